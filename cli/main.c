/*
 * main.c -- the earmark program: one binary, one subcommand per concern.
 * Each subcommand's code lives with the part of the system it drives
 * (fingerprint/cmd_fingerprint.c, ...); this file only dispatches.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#include "earmark_fp.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command_t;

static const command_t commands[] = {
    {"fingerprint", cmd_fingerprint, "print the landmark prints of audio files"},
    {"match", cmd_match, "find reference recordings in clips"},
    {"index", cmd_index, "fingerprint audio files into the catalog"},
    {"catalog", cmd_catalog, "the catalog's tracks: ls, show, rm, stats, compact"},
    {"review", cmd_review, "review stored matches: list, show, confirm, dismiss, export, stats"},
    {"keys", cmd_keys, "API keys of the HTTP service: create, list, revoke"},
    {"serve", cmd_serve, "the HTTP matching service"},
    {"db", cmd_db, "the database: start, stop, status, migrate, psql"},
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *to)
{
    fprintf(to, "usage: earmark COMMAND [OPTIONS] [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(to, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(to, "\n'earmark COMMAND --help' describes each command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("earmark 0.1 (fingerprint parameters v%d)\n", FP_PARAMS_VERSION);
        return EXIT_OK;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "earmark: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
