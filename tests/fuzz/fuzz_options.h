/* SPDX-License-Identifier: MIT */
/* The two apps' option parsers, each called from its own translation unit (both apps
 * have a struct options of their own). Return the parser's result: -1 accepted, else the
 * exit code. */
#ifndef TLSKIT_FUZZ_OPTIONS_H
#define TLSKIT_FUZZ_OPTIONS_H

int fz_tlsserver_parse(int argc, char **argv);
int fz_tlsclient_parse(int argc, char **argv);

#endif
