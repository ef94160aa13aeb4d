/* SPDX-License-Identifier: MIT */
/* The two apps' option parsers, each in its own translation unit (both apps have a
 * static parse_args() and a struct options of their own). Return parse_args()'s result:
 * -1 accepted, else the exit code. */
#ifndef TLSKIT_FUZZ_OPTIONS_H
#define TLSKIT_FUZZ_OPTIONS_H

int fz_tlsserver_parse(int argc, char **argv);
int fz_tlsclient_parse(int argc, char **argv);

#endif
