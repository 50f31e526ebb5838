/* The store's times: the stored form "YYYY-MM-DD HH:MM:SS" (UTC), what
 * the protocol accepts (ISO-8601) and shows ("...T...Z"). No SQLite here:
 * the methods use store_time_parse to check their params, and any backend
 * keeps times in this form. */
#ifndef PROMPTD_STORE_TIME_H
#define PROMPTD_STORE_TIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Stored timestamps: "YYYY-MM-DD HH:MM:SS" (UTC) and its NUL. */
#define STORE_TS_LEN 20

/* Parses an ISO-8601 date ("2026-11-23") or date-time ("2026-11-23T19:20",
 * ":58", ".123", "Z" or "+01:00", a space instead of "T") into the stored
 * form, converted to UTC. upper: the value is an exclusive upper bound
 * that must include what was named (a date means the whole day, a time its
 * whole second). Returns 0, or -1 for anything else. */
int store_time_parse(const char *text, bool upper, char out[STORE_TS_LEN]);

/* The stored form -> "2026-11-23T19:20:58Z". Text that is not in the
 * stored form is copied as it is (truncated to outlen). */
void store_time_iso(const char *stored, char *out, size_t outlen);

/* Unix seconds -> the stored form. */
void store_time_format(int64_t unix_s, char out[STORE_TS_LEN]);

/* The current UTC time: "2026-11-23T19:20:58Z", or compact
 * "20261123T192058Z" for file names. */
void store_time_utc_stamp(char *out, size_t outlen, bool compact);

#endif
