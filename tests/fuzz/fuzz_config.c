/* libFuzzer target for the configuration reader: arbitrary bytes as roost.conf must load or be
 * refused with a file:line message, never crash, and a loaded config must validate or be
 * refused cleanly. The input goes through a file because that is what config_load reads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "core/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[] = "/tmp/roost-fuzz-config-XXXXXX";
	int fd = mkstemp(path);
	struct config cfg;
	char err[1024];

	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		unlink(path);
		return 0;
	}
	close(fd);
	config_defaults(&cfg);
	if (config_load(&cfg, path, err, sizeof(err)) == 0) {
		if (config_validate(&cfg, err, sizeof(err)) == 0) {
			FILE *null = fopen("/dev/null", "w");
			if (null) {
				config_print(&cfg, null);
				fclose(null);
			}
		}
	} else if (strncmp(err, path, strlen(path)) != 0) {
		abort(); /* every refusal names the file */
	}
	config_free(&cfg);
	unlink(path);
	return 0;
}
