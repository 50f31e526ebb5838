/* The store's times (store_time.h): parsing what the protocol accepts,
 * formatting what it shows and what the database keeps. */
#include "store_time.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static bool parse_digits(const char **p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static int days_in_month(int y, int m) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* "Z", "+HH:MM", "+HHMM", "+HH" or nothing (UTC) -> seconds east of UTC. */
static bool parse_offset(const char *p, long *offset) {
    int hh = 0, mm = 0;
    *offset = 0;
    if (*p == '\0' || ((*p == 'Z' || *p == 'z') && p[1] == '\0'))
        return true;
    if (*p != '+' && *p != '-')
        return false;
    int sign = *p++ == '-' ? -1 : 1;
    if (!parse_digits(&p, 2, &hh))
        return false;
    if (*p == ':')
        p++;
    if (*p && !parse_digits(&p, 2, &mm))
        return false;
    if (*p || hh > 23 || mm > 59)
        return false;
    *offset = sign * (hh * 3600L + mm * 60L);
    return true;
}

int store_time_parse(const char *text, bool upper, char out[STORE_TS_LEN]) {
    const char *p = text;
    int y, mo, d, h = 0, mi = 0, sec = 0;
    long step = 86400; /* the span the text names: a day, a minute, a second */
    long offset = 0;
    if (!text || !parse_digits(&p, 4, &y) || *p++ != '-' || !parse_digits(&p, 2, &mo) ||
        *p++ != '-' || !parse_digits(&p, 2, &d))
        return -1;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return -1;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!parse_digits(&p, 2, &h) || *p++ != ':' || !parse_digits(&p, 2, &mi))
            return -1;
        step = 60;
        if (*p == ':') {
            p++;
            if (!parse_digits(&p, 2, &sec))
                return -1;
            step = 1;
            if (*p == '.' || *p == ',') {
                p++;
                if (!isdigit((unsigned char)*p))
                    return -1;
                while (isdigit((unsigned char)*p))
                    p++; /* stored times have whole seconds */
            }
        }
        if (h > 23 || mi > 59 || sec > 59 || !parse_offset(p, &offset))
            return -1;
    } else if (*p != '\0') {
        return -1;
    }
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    int64_t t = (int64_t)timegm(&tm) - offset + (upper ? step : 0);
    store_time_format(t, out);
    return 0;
}

void store_time_format(int64_t unix_s, char out[STORE_TS_LEN]) {
    time_t t = (time_t)unix_s;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0) {
        snprintf(out, STORE_TS_LEN, "%s",
                 unix_s < 0 ? "0000-01-01 00:00:00" : "9999-12-31 23:59:59");
        return;
    }
    /* Unsigned and bounded: the compiler can prove the text fits. */
    snprintf(out, STORE_TS_LEN, "%04u-%02u-%02u %02u:%02u:%02u",
             (unsigned)(tm.tm_year + 1900) % 10000u, (unsigned)(tm.tm_mon + 1) % 100u,
             (unsigned)tm.tm_mday % 100u, (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u,
             (unsigned)tm.tm_sec % 100u);
}

void store_time_iso(const char *stored, char *out, size_t outlen) {
    bool shaped = stored && strlen(stored) == 19 && (stored[10] == ' ' || stored[10] == 'T') &&
                  stored[4] == '-' && stored[7] == '-' && stored[13] == ':' && stored[16] == ':';
    if (shaped)
        snprintf(out, outlen, "%.10sT%.8sZ", stored, stored + 11);
    else
        snprintf(out, outlen, "%s", stored ? stored : "");
}

void store_time_utc_stamp(char *out, size_t outlen, bool compact) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, outlen, compact ? "%Y%m%dT%H%M%SZ" : "%Y-%m-%dT%H:%M:%SZ", &tm);
}
