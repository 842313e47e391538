/* Calendar arithmetic shared by the date parsers of RFC 5322 (mime/date.c) and IMAP
 * (imap/util.c), which must agree to the day on what a date means. */
#include "core.h"

/* The proleptic Gregorian calendar counted in 400-year eras of 146097 days, with the year
 * starting in March so that the leap day is the last day of the year (a branch-free,
 * exact conversion, valid for any year that fits). */
int64_t time_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}
