/*-------------------------------------------------------------------------
 *
 * parse.c
 *	  Byte-level checks of user input: control characters in names and
 *	  the uuids of batch events.
 *
 * Nothing here calls the backend (no palloc, no ereport, no catalog), so
 * that test/fuzz/fuzz_parse.c can build this file with -DFRONTEND and run
 * it under libFuzzer, AddressSanitizer and UndefinedBehaviorSanitizer.  The
 * callers in validate.c turn the results into errors.
 *
 * IDENTIFICATION
 *	  src/parse.c
 *
 *-------------------------------------------------------------------------
 */
#ifndef FRONTEND
#include "postgres.h"
#else
#include "postgres_fe.h"
#endif

#include "parse.h"

/*
 * EsFindControlCharacter returns the byte offset of the first control
 * character in s (C0, DEL, and with utf8 the C1 range U+0080..U+009F, which
 * UTF-8 writes as 0xC2 0x80..0x9F), or -1.  *code receives its code point.
 * The input is a valid string of the database encoding: in every server
 * encoding, bytes below 0x80 are ASCII characters, never parts of
 * multibyte ones, and 0xC2 only starts a character in UTF-8.
 */
int
EsFindControlCharacter(const unsigned char *s, int len, bool utf8, int *code)
{
	int			i;

	for (i = 0; i < len; i++)
	{
		if (s[i] < 0x20 || s[i] == 0x7F)
		{
			*code = s[i];
			return i;
		}
		if (utf8 && s[i] == 0xC2 && i + 1 < len && s[i + 1] >= 0x80 &&
			s[i + 1] <= 0x9F)
		{
			*code = s[i + 1];
			return i;
		}
	}
	return -1;
}

/*
 * HexValue returns the value of a hex digit, or -1.
 */
static int
HexValue(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * EsParseUuidBytes parses a uuid written as 32 hex digits, optionally with
 * the four hyphens of the canonical form (8-4-4-4-12), into 16 bytes.  It
 * returns false for anything else, and then *out may hold partial results.
 */
bool
EsParseUuidBytes(const char *str, int len, unsigned char *out)
{
	bool		hyphens;
	int			nibble = 0;
	int			i;

	if (len == 36)
		hyphens = true;
	else if (len == 32)
		hyphens = false;
	else
		return false;

	for (i = 0; i < len; i++)
	{
		int			v;

		if (hyphens && (i == 8 || i == 13 || i == 18 || i == 23))
		{
			if (str[i] != '-')
				return false;
			continue;
		}
		v = HexValue(str[i]);
		if (v < 0)
			return false;
		if (nibble % 2 == 0)
			out[nibble / 2] = (unsigned char) (v << 4);
		else
			out[nibble / 2] |= (unsigned char) v;
		nibble++;
	}
	return nibble == 2 * ES_UUID_BYTES;
}
