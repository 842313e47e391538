/* libFuzzer target for the IMAP argument parsers: the input is one command's arguments as
 * they come off the wire. The first byte picks the grammar (sequence set, flag list,
 * date-time, date, astring/nstring chain, modified UTF-7 both ways, announced literal, the
 * RETURN options of SEARCH and SORT with their PARTIAL window), the
 * rest is parsed from an exact-size heap copy so ASan sees any read past the end. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "imap/session.h"
#include "imap/sort.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_parser ps;
	uint8_t *copy;
	uint8_t mode;

	if (size == 0)
		return 0;
	mode = data[0] % 8;
	data++;
	size--;
	copy = xmalloc(size ? size : 1);
	memcpy(copy, data, size);
	imap_parser_init(&ps, copy, size);
	switch (mode) {
	case 0: {
		struct imap_seqset set;
		if (imap_parse_seqset(&ps, &set)) {
			struct imap_selected sel = { 0 };
			uint32_t uids[4] = { 3, 9, 10, 4000000000u };
			struct store_uid_range *r = NULL;
			size_t nr = 0;
			sel.uids = uids;
			sel.count = 4;
			if (imap_seqset_msn_to_uids(&sel, &set, &r, &nr))
				free(r);
			imap_seqset_uids(&sel, &set, &r, &nr);
			free(r);
			imap_seqset_free(&set);
		}
		break;
	}
	case 1: {
		uint32_t flags;
		char **kw;
		size_t n;
		if (imap_parse_flag_list(&ps, &flags, &kw, &n, true)) {
			struct buf out;
			buf_init(&out);
			imap_append_flags(&out, flags, n > 0 ? kw[0] : NULL);
			buf_free(&out);
			imap_keywords_free(&kw, &n);
		}
		break;
	}
	case 2: {
		int64_t t;
		if (imap_parse_date_time(&ps, &t)) {
			struct buf out;
			buf_init(&out);
			imap_append_date_time(&out, t);
			buf_free(&out);
		}
		break;
	}
	case 3: {
		int64_t d;
		(void)imap_parse_date(&ps, &d);
		break;
	}
	case 4: {
		struct imap_slice s;
		bool nil;
		for (int i = 0; i < 64 && !imap_at_end(&ps); i++) {
			if (!imap_parse_astring(&ps, &s) && !imap_parse_nstring(&ps, &s, &nil))
				break;
			(void)imap_slice_has_ctl(&s);
			if (!imap_parse_sp(&ps))
				break;
		}
		break;
	}
	case 5: {
		struct buf utf8, back, again;
		buf_init(&utf8);
		buf_init(&back);
		buf_init(&again);
		if (imap_mutf7_to_utf8(copy, size, &utf8) == 0) {
			/* Strict decoding means encoding gives the same bytes back. */
			if (imap_utf8_to_mutf7(buf_cstr(&utf8), &back) < 0)
				abort();
			if ((utf8.len == 0 || memchr(utf8.data, '\0', utf8.len) == NULL) &&
			    (back.len != size || (size > 0 && memcmp(back.data, copy, size) != 0)))
				abort();
		}
		if (imap_utf8_valid(copy, size) && (size == 0 || memchr(copy, '\0', size) == NULL)) {
			char *text = xstrndup((const char *)copy, size);
			if (imap_utf8_to_mutf7(text, &again) < 0)
				abort();
			free(text);
		}
		buf_free(&utf8);
		buf_free(&back);
		buf_free(&again);
		break;
	}
	case 6: {
		uint64_t n;
		bool nonsync;
		(void)imap_line_literal((const char *)copy, size, &n, &nonsync);
		break;
	}
	case 7: {
		struct imap_return_opts opts;
		if (imap_parse_return_opts(&ps, ~0u, &opts) && (opts.ret & IMAP_RET_PARTIAL)) {
			static const uint32_t nums[5] = { 2, 3, 4, 9, 4000000000u };
			struct buf out;
			buf_init(&out);
			for (size_t n = 0; n <= 5; n++) {
				size_t from, to;
				imap_partial_window(&opts.partial, n, &from, &to);
				if (from > to || to > n)
					abort();
				imap_append_partial(&out, &opts.partial, nums, n, n % 2 == 0);
			}
			buf_free(&out);
		}
		break;
	}
	}
	free(copy);
	return 0;
}
