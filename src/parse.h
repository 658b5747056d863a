/*-------------------------------------------------------------------------
 *
 * parse.h
 *	  Byte-level checks of user input that need no backend services.
 *
 * These functions call nothing from the server: test/fuzz/ builds parse.c
 * on its own with libFuzzer and the sanitizers.
 *
 * IDENTIFICATION
 *	  src/parse.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ES_PARSE_H
#define ES_PARSE_H

#define ES_UUID_BYTES	16

extern int	EsFindControlCharacter(const unsigned char *s, int len, bool utf8,
								   int *code);
extern bool EsParseUuidBytes(const char *str, int len, unsigned char *out);

#endif							/* ES_PARSE_H */
