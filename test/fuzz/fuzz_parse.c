/*-------------------------------------------------------------------------
 *
 * fuzz_parse.c
 *	  libFuzzer harness for src/parse.c: the control-character scan of
 *	  stream ids and event types, and the uuid parser of batch events.
 *
 * Besides memory errors and undefined behaviour (the sanitizers), it checks
 * each function against an independent reference written differently:
 *
 *	- EsParseUuidBytes accepts exactly 32 hex digits or the 8-4-4-4-12 form,
 *	  and then its 16 bytes print back as the input (ignoring case and
 *	  hyphens);
 *	- EsFindControlCharacter, on valid UTF-8, reports the first code point
 *	  in U+0000..U+001F, U+007F or U+0080..U+009F, at its byte offset; on
 *	  any bytes without UTF-8, the first byte below 0x20 or equal to 0x7F.
 *
 * Build and run: test/fuzz/run.sh SECONDS.
 *
 * IDENTIFICATION
 *	  test/fuzz/fuzz_parse.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* plain C: src/parse.c is built apart, with PostgreSQL's headers */
#include "parse.h"

static void
Fail(const char *what, const uint8_t *data, size_t size)
{
	size_t		i;

	fprintf(stderr, "fuzz_parse: %s; input (%zu bytes):", what, size);
	for (i = 0; i < size && i < 128; i++)
		fprintf(stderr, " %02x", data[i]);
	fprintf(stderr, "\n");
	abort();
}

static int
RefHex(uint8_t c)
{
	static const char digits[] = "0123456789abcdef";
	const char *p;

	if (c >= 'A' && c <= 'F')
		c = c - 'A' + 'a';
	if (c == 0)
		return -1;
	p = strchr(digits, c);
	return p ? (int) (p - digits) : -1;
}

/* the reference uuid parser: strip the hyphens first, then read pairs */
static bool
RefParseUuid(const uint8_t *s, size_t len, unsigned char *out)
{
	uint8_t		hex[32];
	size_t		n = 0;
	size_t		i;

	if (len == 36)
	{
		for (i = 0; i < len; i++)
		{
			bool		dash_here = (i == 8 || i == 13 || i == 18 || i == 23);

			if (dash_here != (s[i] == '-'))
				return false;
			if (!dash_here)
				hex[n++] = s[i];
		}
	}
	else if (len == 32)
	{
		memcpy(hex, s, 32);
		n = 32;
	}
	else
		return false;

	for (i = 0; i < 16; i++)
	{
		int			hi = RefHex(hex[2 * i]);
		int			lo = RefHex(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		out[i] = (unsigned char) (hi * 16 + lo);
	}
	return true;
}

static void
CheckUuid(const uint8_t *data, size_t size)
{
	unsigned char got[ES_UUID_BYTES];
	unsigned char want[ES_UUID_BYTES];
	bool		ok = EsParseUuidBytes((const char *) data, (int) size, got);
	bool		ref = RefParseUuid(data, size, want);

	if (ok != ref)
		Fail(ok ? "uuid accepted, reference refuses" :
			 "uuid refused, reference accepts", data, size);
	if (ok)
	{
		char		printed[33];
		size_t		i,
					j = 0;

		if (memcmp(got, want, ES_UUID_BYTES) != 0)
			Fail("uuid bytes differ from the reference", data, size);
		for (i = 0; i < ES_UUID_BYTES; i++)
			snprintf(printed + 2 * i, 3, "%02x", got[i]);
		for (i = 0; i < size; i++)
		{
			uint8_t		c = data[i];

			if (c == '-')
				continue;
			if (c >= 'A' && c <= 'F')
				c = c - 'A' + 'a';
			if (j >= 32 || printed[j++] != c)
				Fail("uuid does not print back as its input", data, size);
		}
		if (j != 32)
			Fail("uuid has the wrong number of digits", data, size);
	}
}

/*
 * RefDecodeUtf8 decodes one strict UTF-8 character at s (no overlong forms,
 * no surrogates, nothing above U+10FFFF); returns its length or 0.
 */
static int
RefDecodeUtf8(const uint8_t *s, size_t left, uint32_t *cp)
{
	int			len;
	uint32_t	v;
	uint32_t	min;
	int			i;

	if (s[0] < 0x80)
	{
		*cp = s[0];
		return 1;
	}
	else if ((s[0] & 0xE0) == 0xC0)
		len = 2, v = s[0] & 0x1F, min = 0x80;
	else if ((s[0] & 0xF0) == 0xE0)
		len = 3, v = s[0] & 0x0F, min = 0x800;
	else if ((s[0] & 0xF8) == 0xF0)
		len = 4, v = s[0] & 0x07, min = 0x10000;
	else
		return 0;
	if ((size_t) len > left)
		return 0;
	for (i = 1; i < len; i++)
	{
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3F);
	}
	if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
		return 0;
	*cp = v;
	return len;
}

static void
CheckControl(const uint8_t *data, size_t size)
{
	int			code = -1;
	int			got;
	int			want = -1;
	int			want_code = -1;
	size_t		i;
	bool		valid = true;

	/* any bytes, no UTF-8: the C0 range and DEL */
	got = EsFindControlCharacter(data, (int) size, false, &code);
	for (i = 0; i < size; i++)
	{
		if (data[i] < 0x20 || data[i] == 0x7F)
		{
			want = (int) i;
			want_code = data[i];
			break;
		}
	}
	if (got != want || (got >= 0 && code != want_code))
		Fail("control character scan (no UTF-8) differs", data, size);

	/* any bytes with UTF-8: must not read past the end (ASan) */
	(void) EsFindControlCharacter(data, (int) size, true, &code);

	/* valid UTF-8: the first C0, DEL or C1 code point */
	want = -1;
	for (i = 0; i < size;)
	{
		uint32_t	cp;
		int			len = RefDecodeUtf8(data + i, size - i, &cp);

		if (len == 0)
		{
			valid = false;
			break;
		}
		if (want < 0 && (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F)))
		{
			want = (int) i;
			want_code = (int) cp;
		}
		i += len;
	}
	if (!valid)
		return;
	code = -1;
	got = EsFindControlCharacter(data, (int) size, true, &code);
	if (got != want || (got >= 0 && code != want_code))
		Fail("control character scan (UTF-8) differs", data, size);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* names are at most 1 GB; the functions take an int length */
	if (size > 1 << 20)
		return 0;
	CheckUuid(data, size);
	CheckControl(data, size);
	return 0;
}
