#include "util/b64.h"

int b64_digit(int c, enum b64_alphabet alphabet)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (alphabet == B64_URL ? '-' : '+'))
		return 62;
	if (c == (alphabet == B64_URL ? '_' : '/'))
		return 63;
	return -1;
}
