/* cmd_softemb_splice.c - `tokenmill softemb splice`: a llama.cpp model (GGUF)
 * rewritten for a new vocabulary, its embedding rows kept or predicted
 * (tkm_se_splice). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tokenmill_softemb.h"

static void splice_usage(FILE *f)
{
    fprintf(f,
            "usage: tokenmill softemb splice --gguf MODEL.gguf -m NEW.model --encoder FILE -o OUT.gguf [OPTIONS]\n"
            "\n"
            "Rewrites a llama.cpp model for a new vocabulary: token_embd.weight (and an untied\n"
            "output.weight) get one row per new piece, the old row byte for byte where the\n"
            "piece (or its role: unk/bos/eos/pad, or its text) was in the old vocabulary,\n"
            "else a row predicted by the encoder; the tokenizer metadata becomes the new\n"
            "model's; every other tensor and key is copied unchanged.\n"
            "\n"
            "      --gguf FILE            the model (GGUF v2/v3; token_embd F32, F16, BF16 or Q8_0)\n"
            "  -m, --model FILE           the new vocabulary (.model, or a sentencepiece-style tokenizer.json)\n"
            "      --encoder FILE         a .tkse trained on the model's token_embd (softemb train --teacher MODEL.gguf)\n"
            "      --output-encoder FILE  a .tkse trained on its output.weight (--tensor output.weight);\n"
            "                             without it new output rows are the mean of the old ones\n"
            "      --threads N\n"
            "  -o, --output FILE          file to write (atomically; - for standard output)\n"
            "  -q, --quiet\n"
            "  -h, --help\n");
}

enum { S_GGUF = 256, S_ENCODER, S_OUTENC, S_THREADS };

static const struct option splice_opts[] = {
    {"gguf", required_argument, 0, S_GGUF},         {"model", required_argument, 0, 'm'},
    {"encoder", required_argument, 0, S_ENCODER},   {"output-encoder", required_argument, 0, S_OUTENC},
    {"threads", required_argument, 0, S_THREADS},   {"output", required_argument, 0, 'o'},
    {"quiet", no_argument, 0, 'q'},                 {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0}};

int softemb_splice(int argc, char **argv)
{
    const char *in = NULL, *model = NULL, *enc = NULL, *oenc = NULL, *out = NULL;
    int threads = 0, c;
    long v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:o:qh", splice_opts, NULL)) != -1) {
        switch (c) {
        case S_GGUF: in = optarg; break;
        case 'm': model = optarg; break;
        case S_ENCODER: enc = optarg; break;
        case S_OUTENC: oenc = optarg; break;
        case 'o': out = optarg; break;
        case 'q': cli_quiet = 1; break;
        case S_THREADS:
            if (cli_int(optarg, 0, 1024, &v) < 0) {
                fprintf(stderr, "tokenmill softemb splice: invalid value '%s' for --threads (0 to 1024)\n", optarg);
                return EXIT_USAGE;
            }
            threads = (int)v;
            break;
        case 'h': splice_usage(stdout); return EXIT_OK;
        default: splice_usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tokenmill softemb splice: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (!in || !model || !enc || !out) {
        fprintf(stderr, "tokenmill softemb splice: %s\n",
                !in ? "no model given (--gguf FILE)" : !model ? "no vocabulary given (-m FILE)"
                : !enc ? "no encoder given (--encoder FILE)" : "no output given (-o FILE)");
        return EXIT_USAGE;
    }
    int status = EXIT_FAIL, rc;
    tkm_se_encoder *e = NULL, *oe = NULL;
    tkm_model *m = NULL;
    if ((rc = tkm_se_load(enc, &e)) < 0 || (oenc && (rc = tkm_se_load(oenc, &oe)) < 0) ||
        (rc = tkm_model_load_any(model, TKM_TIKTOKEN_AUTO, &m)) < 0) {
        cli_error("softemb splice", rc);
        goto done;
    }
    cli_model_warning("softemb splice", m);
    tkm_se_splice_opts so = { e, oe, threads };
    tkm_se_splice_stats st;
    char *g = cli_guard_output(out); /* PATH.tmp.PID removed on SIGINT/SIGTERM */
    rc = tkm_se_splice(in, m, &so, out, &st);
    cli_unguard_output(g);
    if (rc < 0) {
        cli_error("softemb splice", rc);
        goto done;
    }
    if (!st.encoder_matches)
        fprintf(stderr, "tokenmill softemb splice: warning: %s was not trained on this model's token_embd.weight "
                        "(another teacher fingerprint)\n", enc);
    if (oe && st.output && !st.output_encoder_matches)
        fprintf(stderr, "tokenmill softemb splice: warning: %s was not trained on this model's output.weight\n", oenc);
    if (oe && !st.output)
        fprintf(stderr, "tokenmill softemb splice: warning: the model has no output.weight (tied embeddings): "
                        "--output-encoder is not used\n");
    if (!cli_quiet)
        fprintf(stderr, "tokenmill softemb splice: wrote %s: %zu rows x %zu (was %zu): %zu kept (%zu by role, %zu by "
                        "piece, %zu by text), %zu predicted, %zu special rows set to the mean%s\n",
                out, st.rows, st.dim, st.old_rows, st.by_role + st.by_piece + st.by_bytes, st.by_role, st.by_piece,
                st.by_bytes, st.predicted, st.filled,
                !st.output ? "; tied output" : st.output_predicted ? "; output.weight spliced likewise"
                : "; output.weight: kept rows copied, the others the mean");
    status = EXIT_OK;
done:
    tkm_model_free(m);
    tkm_se_free(e);
    tkm_se_free(oe);
    return status;
}
