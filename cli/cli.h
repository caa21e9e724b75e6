/*
 * cli.h -- what the earmark subcommands share: exit codes, the command
 * table entry type and small helpers for messages.
 *
 * Every subcommand is `int cmd_NAME(int argc, char **argv)` with argv[0] the
 * subcommand's name; it returns one of the exit codes below and prints its
 * errors on stderr in the form "earmark NAME: what happened" followed, where
 * useful, by a line "hint: what to do".
 */
#ifndef EARMARK_CLI_H
#define EARMARK_CLI_H

#include <stdio.h>

#define EXIT_OK 0     /* everything asked for was done */
#define EXIT_FAIL 1   /* something failed (a file, the database, ...) */
#define EXIT_USAGE 2  /* the command line itself is wrong */

/* Print "earmark CMD: message" on stderr. */
void cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print a usage error and the one-line usage, return EXIT_USAGE. */
int cli_usage(const char *cmd, const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Number of online CPUs (at least 1). */
int cli_ncpu(void);
/* Parse a positive integer option value in [lo, hi]; 0 on success. */
int cli_parse_int(const char *s, long lo, long hi, long *out);
/* Print s as a JSON string literal (quotes, escapes) on f. */
void cli_json_string(FILE *f, const char *s);
/*
 * Connect to the database earmark uses (db_conninfo_resolve()) and check
 * its schema; on failure print "earmark CMD: ..." and return NULL.  The
 * caller closes the connection (db_close()).
 */
struct db_conn *cli_db_open(const char *cmd);
/* 1 when stdout / stderr is a terminal. */
int cli_isatty(int fd);

int cmd_fingerprint(int argc, char **argv);
int cmd_match(int argc, char **argv);
int cmd_db(int argc, char **argv);
int cmd_index(int argc, char **argv);
int cmd_catalog(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_review(int argc, char **argv);

#endif
