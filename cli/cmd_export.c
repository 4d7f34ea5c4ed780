/* cmd_export.c - `tokenmill export`: writes a model in another format: a
 * Hugging Face tokenizer.json (--hf-json) or a folder transformers loads
 * (--hf-dir). */
#include <getopt.h>
#include <string.h>

#include "cli.h"

static void export_usage(FILE *f)
{
    fprintf(f,
            "usage: tokenmill export --hf-json -m MODEL -o tokenizer.json\n"
            "       tokenmill export --hf-dir DIR -m MODEL\n"
            "\n"
            "Writes a sentencepiece BPE or Unigram model as a Hugging Face tokenizer.json\n"
            "that the tokenizers library loads and that gives the same ids as sentencepiece,\n"
            "or as a folder that transformers' AutoTokenizer.from_pretrained(DIR) loads:\n"
            "tokenizer.json, tokenizer.model, tokenizer_config.json, special_tokens_map.json.\n"
            "\n"
            "      --hf-json          output format: HF tokenizer.json (to -o FILE)\n"
            "      --hf-dir DIR       output format: a transformers folder (created if missing)\n"
            "      --hf-allow-ties    export a Unigram model although HF can order the pieces\n"
            "                         of an exact score tie differently (see tokenmill-export(1))\n"
            "  -m, --model FILE       sentencepiece .model to read\n"
            "  -o, --output FILE      file to write (atomically)\n"
            "  -h, --help\n");
}

enum { O_HF_JSON = 256, O_TIES, O_HF_DIR };

static const struct option export_opts[] = {
    {"hf-json", no_argument, 0, O_HF_JSON},
    {"hf-dir", required_argument, 0, O_HF_DIR},
    {"hf-allow-ties", no_argument, 0, O_TIES},
    {"model", required_argument, 0, 'm'},
    {"output", required_argument, 0, 'o'},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0}};

int cmd_export(int argc, char **argv)
{
    const char *model = NULL, *out = NULL, *dir = NULL;
    int hf = 0, c;
    unsigned flags = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:o:h", export_opts, NULL)) != -1) {
        switch (c) {
        case O_HF_JSON: hf = 1; break;
        case O_HF_DIR: dir = optarg; break;
        case O_TIES: flags |= TKM_EXPORT_UNIGRAM_TIES; break;
        case 'm': model = optarg; break;
        case 'o': out = optarg; break;
        case 'h': export_usage(stdout); return EXIT_OK;
        default: export_usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tokenmill export: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (hf == !!dir) {
        fprintf(stderr, "tokenmill export: %s\n", hf ? "--hf-json and --hf-dir exclude each other"
                                                       : "no output format given (--hf-json or --hf-dir DIR)");
        return EXIT_USAGE;
    }
    if (!model || (hf && !out) || (dir && out)) {
        fprintf(stderr, "tokenmill export: %s\n", !model ? "no model given (-m MODEL)"
                                                   : hf ? "no output given (-o FILE)"
                                                        : "--hf-dir takes no -o (the folder is the output)");
        return EXIT_USAGE;
    }
    tkm_model *m = NULL;
    int rc = tkm_model_load(model, &m);
    if (rc < 0) {
        cli_error("export", rc);
        return EXIT_FAIL;
    }
    cli_model_warning("export", m);
    char *g = dir ? NULL : cli_guard_output(out); /* PATH.tmp.PID removed on SIGINT/SIGTERM */
    rc = dir ? tkm_model_export_hf_dir(m, dir, flags) : tkm_model_export_hf_json_flags(m, out, flags);
    cli_unguard_output(g);
    tkm_model_free(m);
    if (rc < 0) {
        const char *d = tkm_last_error();
        fprintf(stderr, "tokenmill export: cannot write %s: %s\n", dir ? dir : out, d && *d ? d : tkm_strerror(rc));
        if (rc == TKM_ETIES)
            fprintf(stderr, "tokenmill export: --hf-allow-ties writes it anyway (see tokenmill-export(1))\n");
        return EXIT_FAIL;
    }
    return EXIT_OK;
}
