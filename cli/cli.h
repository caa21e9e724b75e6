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

#include <stddef.h>
#include <stdint.h>
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
/*
 * Print s as a JSON string literal on f, encoded by jansson.  Bytes of s
 * that are not UTF-8 are written as the text \xNN (CLI_ESCAPE_UTF8 below),
 * so the output is valid UTF-8 JSON whatever s holds (a file name from
 * another system).  Prints null when memory runs out.
 */
void cli_json_string(FILE *f, const char *s);

/* ---- text from outside, shown safely -------------------------------------- */

/*
 * The length (1..4) of the UTF-8 character at s[0 .. n-1], its code point in
 * *cp; 0 when the bytes there are not one (a stray continuation byte, an
 * overlong form, a surrogate, a value over U+10FFFF, a sequence cut short,
 * n == 0).
 */
size_t cli_utf8_char(const unsigned char *s, size_t n, uint32_t *cp);

/*
 * 1 when the string s is valid UTF-8; else 0, and *bad (may be NULL) gets
 * the offset of the first byte that is not part of a character.
 */
int cli_utf8_valid(const char *s, size_t *bad);

/* How cli_text_escape() treats its input. */
typedef enum cli_escape {
    /* for a terminal or a one-line record: the C0 controls, DEL, the C1
     * controls (U+0080..U+009F), the bidirectional overrides and isolates
     * (U+202A..U+202E, U+2066..U+2069) and '\' become escapes: \n \r \t
     * \\ \xNN \uNNNN; so no byte of the text can move the cursor, clear
     * the screen, set a window title or start a forged line */
    CLI_ESCAPE_TERMINAL = 0,
    /* for JSON and the database: only the bytes that are not UTF-8 become
     * \xNN (a backslash is kept as it is), so the text is valid UTF-8 and
     * otherwise unchanged */
    CLI_ESCAPE_UTF8 = 1
} cli_escape_t;

/*
 * Write s (NULL reads as "") into out[0 .. outlen-1] with the escapes of
 * `how`, NUL-terminated (out may be NULL when outlen is 0).  Returns the
 * length of the whole escaped text, like snprintf: a return >= outlen means
 * it was cut, after a whole character or escape.  Invalid UTF-8 bytes are
 * always \xNN.  Thread-safe.
 */
size_t cli_text_escape(char *out, size_t outlen, const char *s, cli_escape_t how);

/*
 * A copy of s (NULL reads as "") with the escapes of `how`, malloc'd, owned
 * by the caller (free()); NULL only when memory runs out.
 */
char *cli_text_dup(const char *s, cli_escape_t how);

/*
 * The strings made by cli_text() for one piece of output: keep them in one
 * of these and free them all in one call.  Initialize with CLI_TEXTS_INIT.
 */
typedef struct cli_texts {
    char **v;
    size_t n, cap;
} cli_texts_t;
#define CLI_TEXTS_INIT {NULL, 0, 0}

/*
 * s escaped for a terminal (CLI_ESCAPE_TERMINAL), owned by *keep and valid
 * until cli_texts_free(keep).  NULL reads as "".  Never NULL: when memory
 * runs out the result is "(out of memory)", so output never shows the raw
 * text.
 */
const char *cli_text(cli_texts_t *keep, const char *s);

/* Free every string of *keep; it is left empty, ready for reuse. */
void cli_texts_free(cli_texts_t *keep);
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
