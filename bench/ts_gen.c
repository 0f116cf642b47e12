/*
 * ts_gen.c — benchmark Q's data (SPEC.md) as CSV on stdout:
 *   key,ts,"value"   for series s in [0, S), point i in [0, P)
 * Usage: ts_gen S P
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec_data.h"

int
main(int argc, char **argv)
{
	int			S = argc > 1 ? atoi(argv[1]) : 5000;
	int			P = argc > 2 ? atoi(argv[2]) : 200;
	char		key[SPEC_KEY_MAX];
	char		val[SPEC_VALUE_SIZE];
	static char buf[1 << 20];

	setvbuf(stdout, buf, _IOFBF, sizeof buf);
	for (int s = 0; s < S; s++)
	{
		spec_key(key, s);
		for (int i = 0; i < P; i++)
		{
			spec_value(val, s, i);
			printf("%s,%lld,\"", key, (long long) spec_ts(i));
			for (int j = 0; j < SPEC_VALUE_SIZE; j++)
			{
				if (val[j] == '"')
					putchar('"');
				putchar(val[j]);
			}
			fputs("\"\n", stdout);
		}
	}
	return 0;
}
