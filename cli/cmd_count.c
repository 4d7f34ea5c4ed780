/* cmd_count.c - `tokenmill count`: counts pre-tokens with train's counting
 * options into a count file (.tkc, tokenmill-count(1)), which `train
 * --counts` reads; `count --merge` combines count files by a streaming
 * k-way merge. Counting is cmd_train's own option parsing and pipeline
 * (cli_count_mode), so the options mean exactly what they mean to train. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tokenmill_analyze.h"

static void count_usage(FILE *f)
{
    fprintf(f,
            "usage: tokenmill count [TRAIN'S COUNTING OPTIONS] -o OUT.tkc FILE...\n"
            "       tokenmill count --merge -o OUT.tkc IN.tkc...\n"
            "\n"
            "Counts the pre-tokens of text files as `tokenmill train` does and writes them\n"
            "with their counts to a count file; `tokenmill train --counts 'GLOB'` trains\n"
            "the model that training on the text itself gives, byte for byte. Options are\n"
            "train's (--preset, --input NAME=PATH, --weight, --split-digits, ...; see\n"
            "tokenmill-train(1)); those that change counting are recorded in the file and\n"
            "a train with other values refuses it. --merge sums count files (inputs in\n"
            "the order given; IN may be a glob). See tokenmill-count(1) for the format.\n"
            "\n"
            "  -o, --output FILE   count file to write (atomically; '-' standard output)\n"
            "      --merge         combine count files instead of counting text\n"
            "  -q, --quiet         no summary\n"
            "  -h, --help\n");
}

static int count_merge(int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, 0, 'o'}, {"merge", no_argument, 0, 'm'},
                                         {"quiet", no_argument, 0, 'q'},        {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *out = NULL;
    int quiet = cli_quiet, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'm': break;
        case 'q': quiet = 1; break;
        case 'h': count_usage(stdout); return EXIT_OK;
        default:
            fprintf(stderr, "tokenmill count: --merge takes only -o, -q and count files\n");
            return EXIT_USAGE;
        }
    }
    if (!out) {
        fprintf(stderr, "tokenmill count: no output given (-o FILE.tkc)\n");
        return EXIT_USAGE;
    }
    if (optind >= argc) {
        fprintf(stderr, "tokenmill count: --merge: no count files given\n");
        return EXIT_USAGE;
    }
    char **all = NULL;
    int n = 0, rc = 0;
    for (int i = optind; rc == 0 && i < argc; i++) {
        char **f = NULL;
        int nf = 0;
        rc = tkm_analyze_files(argv[i], &f, &nf);
        if (rc < 0) break;
        char **na = realloc(all, (size_t)(n + nf) * sizeof *na);
        if (!na) { rc = TKM_ENOMEM; for (int k = 0; k < nf; k++) free(f[k]); free(f); break; }
        all = na;
        for (int k = 0; k < nf; k++) all[n++] = f[k];
        free(f);
    }
    uint64_t entries = 0;
    if (rc == 0) {
        char *g = cli_guard_output(out);
        rc = tkm_counts_merge((const char *const *)all, n, out, &entries);
        cli_unguard_output(g);
    }
    for (int i = 0; i < n; i++) free(all[i]);
    free(all);
    if (rc < 0) {
        cli_error("count", rc);
        return EXIT_FAIL;
    }
    if (!quiet)
        fprintf(stderr, "tokenmill count: wrote %s (%d count files merged, %llu unique pre-tokens)\n", out, n,
                (unsigned long long)entries);
    return EXIT_OK;
}

int cmd_count(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) break;
        if (!strcmp(argv[i], "--merge")) return count_merge(argc, argv);
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            count_usage(stdout);
            return EXIT_OK;
        }
    }
    cli_count_mode = 1;
    return cmd_train(argc, argv);
}
