/*
 * util/b64: the value of a base64 digit, in the standard alphabet (RFC 4648 section 4,
 * '+' and '/': HAProxy's base64 converter) or the URL-safe one (section 5, '-' and '_':
 * JWTs). Pure. The decoders stay with their formats: padded base64 in objects/, unpadded
 * base64url in jwt/.
 */
#ifndef JR_UTIL_B64_H
#define JR_UTIL_B64_H

enum b64_alphabet {
	B64_STANDARD, /* A-Z a-z 0-9 + / */
	B64_URL,      /* A-Z a-z 0-9 - _ */
};

/* The value of digit c (0 to 63), or -1 when c is no digit of the alphabet (the padding
 * '=' included). */
int b64_digit(int c, enum b64_alphabet alphabet);

#endif /* JR_UTIL_B64_H */
