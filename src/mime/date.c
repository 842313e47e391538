/* RFC 5322 §3.3 date-time parsing, tolerant of the obsolete forms of §4.3 and of what real
 * mailers write: missing weekday or seconds, two- and three-digit years, named and military
 * zones, comments, "-" between day, month and year (IMAP's date-time form). */
#include <string.h>

#include "mime_private.h"

static const char *const months[12] = { "jan", "feb", "mar", "apr", "may", "jun",
					"jul", "aug", "sep", "oct", "nov", "dec" };

struct date_cursor {
	const char *s;
	size_t len, i;
};

static void skip_sep(struct date_cursor *c)
{
	for (;;) {
		c->i = mime_skip_cfws(c->s, c->len, c->i);
		/* Only called between date items, never before the zone, so a '-' here is a
		 * separator, not a sign. */
		if (c->i < c->len && (c->s[c->i] == ',' || c->s[c->i] == '-'))
			c->i++;
		else
			return;
	}
}

/* Reads 1..max digits; returns the number of digits read. */
static int read_num(struct date_cursor *c, int max, int *v_r)
{
	int n = 0, v = 0;

	while (c->i < c->len && n < max && c->s[c->i] >= '0' && c->s[c->i] <= '9') {
		v = v * 10 + (c->s[c->i] - '0');
		c->i++;
		n++;
	}
	*v_r = v;
	return n;
}

static size_t read_word(struct date_cursor *c, const char **w_r)
{
	size_t start = c->i;

	while (c->i < c->len && ((c->s[c->i] | 32) >= 'a' && (c->s[c->i] | 32) <= 'z'))
		c->i++;
	*w_r = c->s + start;
	return c->i - start;
}

static bool zone_name(const char *w, size_t n, int *minutes_r)
{
	static const struct {
		const char *name;
		int hours;
	} zones[] = {
		{ "ut", 0 },   { "utc", 0 },  { "gmt", 0 },  { "z", 0 },    { "est", -5 },
		{ "edt", -4 }, { "cst", -6 }, { "cdt", -5 }, { "mst", -7 }, { "mdt", -6 },
		{ "pst", -8 }, { "pdt", -7 },
	};

	for (size_t i = 0; i < ARRAY_LEN(zones); i++) {
		if (strlen(zones[i].name) == n && str_nieq(w, zones[i].name, n)) {
			*minutes_r = zones[i].hours * 60;
			return true;
		}
	}
	/* RFC 5322 §4.3: other military zones are treated as unknown, i.e. -0000. */
	*minutes_r = 0;
	return n == 1;
}

int mime_parse_date(const char *s, size_t len, int64_t *unix_r, int *tz_minutes_r)
{
	struct date_cursor c = { .s = s, .len = len, .i = 0 };
	const char *w;
	size_t wl;
	int day, mon = -1, year, hour, min, sec = 0, nd;
	int tz = 0;

	if (len == 0)
		return -1; /* s may be NULL (an empty buffer) */
	skip_sep(&c);
	/* Optional day-of-week (any word, checked loosely). */
	wl = read_word(&c, &w);
	if (wl > 0) {
		skip_sep(&c);
		if (c.i < c.len && c.s[c.i] == '.')
			c.i++;
		skip_sep(&c);
	}
	if (read_num(&c, 2, &day) == 0)
		return -1;
	skip_sep(&c);
	wl = read_word(&c, &w);
	if (wl < 3)
		return -1;
	for (int m = 0; m < 12; m++) {
		if (str_nieq(w, months[m], 3))
			mon = m + 1;
	}
	if (mon < 0)
		return -1;
	skip_sep(&c);
	nd = read_num(&c, 4, &year);
	if (nd == 0 || (c.i < c.len && c.s[c.i] >= '0' && c.s[c.i] <= '9'))
		return -1;
	/* RFC 5322 §4.3: two-digit years below 50 are 20xx, others 19xx; three digits +1900. */
	if (nd <= 2)
		year += year < 50 ? 2000 : 1900;
	else if (nd == 3)
		year += 1900;
	skip_sep(&c);
	if (read_num(&c, 2, &hour) == 0)
		return -1;
	c.i = mime_skip_cfws(s, len, c.i);
	if (c.i >= len || s[c.i] != ':')
		return -1;
	c.i = mime_skip_cfws(s, len, c.i + 1);
	if (read_num(&c, 2, &min) == 0)
		return -1;
	c.i = mime_skip_cfws(s, len, c.i);
	if (c.i < len && s[c.i] == ':') {
		c.i = mime_skip_cfws(s, len, c.i + 1);
		if (read_num(&c, 2, &sec) == 0)
			return -1;
	}
	c.i = mime_skip_cfws(s, len, c.i);
	if (c.i < len && (s[c.i] == '+' || s[c.i] == '-')) {
		int sign = s[c.i] == '-' ? -1 : 1;
		int hhmm;
		c.i++;
		if (read_num(&c, 4, &hhmm) != 4 || hhmm % 100 > 59 || hhmm / 100 > 23)
			return -1;
		tz = sign * ((hhmm / 100) * 60 + hhmm % 100);
	} else if (c.i < len) {
		wl = read_word(&c, &w);
		if (wl > 0 && !zone_name(w, wl, &tz))
			tz = 0; /* unknown zone names count as -0000 */
	}
	static const unsigned char mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	if (year < 1900 || year > 9999 || day < 1 || day > mdays[mon - 1] ||
	    (mon == 2 && day == 29 && !leap) || hour > 23 || min > 59 || sec > 60)
		return -1;
	*unix_r = time_days_from_civil(year, (unsigned)mon, (unsigned)day) * 86400 + hour * 3600 +
		  min * 60 + sec - (int64_t)tz * 60;
	*tz_minutes_r = tz;
	return 0;
}
