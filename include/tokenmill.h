/* tokenmill.h - the public API of libtokenmill: sentencepiece-compatible
 * models (.model read/write), the BPE encoder/decoder, streamed corpus input
 * and the BPE trainer.
 *
 * Ownership: every tkm_X_new/_load returns a handle the caller frees with
 * tkm_X_free (which accepts NULL); pointers returned by accessors borrow from
 * the handle and stay valid until it is freed or, for encoder output, until
 * the next call on the same encoder. Functions return 0 (or a count) on
 * success and a negative TKM_E* code on failure; tkm_last_error() gives a
 * thread-local message with the detail (file, line, byte offset). The library
 * never prints and never exits.
 *
 * Thread safety: a tkm_model is immutable after loading and may be shared by
 * threads; a tkm_encoder, tkm_reader or tkm_trainer is used by one thread at a
 * time. */
#ifndef TOKENMILL_H
#define TOKENMILL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TKM_VERSION "0.1.0"

/* ---- errors ------------------------------------------------------------ */
enum {
    TKM_OK = 0,
    TKM_ENOMEM = -1,    /* out of memory */
    TKM_EIO = -2,       /* read/write failure, missing file */
    TKM_EFORMAT = -3,   /* malformed input file (model, corpus) */
    TKM_EINVAL = -4,    /* invalid argument or option */
    TKM_ENOTSUP = -5,   /* valid but unsupported (model type, feature) */
    TKM_ERANGE = -6,    /* id or size out of range */
    TKM_EEMPTY = -7,    /* no usable input */
    TKM_EVOCAB = -8,    /* vocabulary size cannot be reached */
    TKM_ETIES = -9      /* an export would break exact score ties unlike sentencepiece
                           (Unigram to tokenizer.json without TKM_EXPORT_UNIGRAM_TIES) */
};

/* Short text for an error code. Never NULL. */
const char *tkm_strerror(int code);
/* Detail of the last error raised on this thread ("" if none). */
const char *tkm_last_error(void);
/* Frees memory the library returned to the caller (tkm_decode output). */
void tkm_free(void *p);

/* ---- models -------------------------------------------------------------- */
typedef struct tkm_model tkm_model;

typedef enum {
    TKM_PIECE_NORMAL = 1,
    TKM_PIECE_UNKNOWN = 2,
    TKM_PIECE_CONTROL = 3,
    TKM_PIECE_USER_DEFINED = 4,
    TKM_PIECE_UNUSED = 5,
    TKM_PIECE_BYTE = 6
} tkm_piece_type;

typedef enum {
    TKM_MODEL_UNIGRAM = 1,
    TKM_MODEL_BPE = 2,
    TKM_MODEL_WORD = 3,
    TKM_MODEL_CHAR = 4
} tkm_model_type;

/* Loads a sentencepiece ModelProto (.model). Any valid file written by
 * sentencepiece loads; encoding needs a BPE model.
 * @return 0 or TKM_EIO / TKM_EFORMAT (message names the file and offset). */
int tkm_model_load(const char *path, tkm_model **out);
int tkm_model_load_mem(const void *data, size_t size, const char *name, tkm_model **out);
void tkm_model_free(tkm_model *m);
/* Why a .model that loaded looks damaged, or NULL: it has no trainer_spec or
 * no normalizer_spec (sentencepiece always writes both, after the pieces, so
 * a file cut short still parses as a smaller model, with default settings:
 * Unigram, no byte fallback), or fewer pieces than its trainer_spec's
 * vocab_size (unless hard_vocab_limit is false). sentencepiece loads such
 * files silently; the tokenmill CLI prints this as a warning. The string
 * names the file and lives as long as the model. */
const char *tkm_model_warning(const tkm_model *m);

int tkm_model_size(const tkm_model *m);            /* number of pieces */
tkm_model_type tkm_model_kind(const tkm_model *m); /* BPE, UNIGRAM, ... */
/* Piece bytes (not NUL-terminated; *len receives the length), or NULL if id is
 * out of range. */
const char *tkm_model_piece(const tkm_model *m, int id, size_t *len);
float tkm_model_score(const tkm_model *m, int id);
tkm_piece_type tkm_model_piece_type(const tkm_model *m, int id);
/* Id of a piece string, or -1 when absent (no unk substitution). */
int tkm_model_piece_id(const tkm_model *m, const char *piece, size_t len);
/* Special ids (-1 when the model has none). */
int tkm_model_unk_id(const tkm_model *m);
int tkm_model_bos_id(const tkm_model *m);
int tkm_model_eos_id(const tkm_model *m);
int tkm_model_pad_id(const tkm_model *m);
int tkm_model_byte_fallback(const tkm_model *m);
/* Serialized ModelProto bytes as loaded or built (borrowed). */
const uint8_t *tkm_model_bytes(const tkm_model *m, size_t *len);
/* Writes the model to path atomically (temp file + rename). */
int tkm_model_save(const tkm_model *m, const char *path);

/* ---- encoder ------------------------------------------------------------- */
typedef struct tkm_encoder tkm_encoder;

/* An encoder holds per-thread scratch space and a cache; create one per
 * thread. The model must outlive it. */
int tkm_encoder_new(const tkm_model *m, tkm_encoder **out);
void tkm_encoder_free(tkm_encoder *e);
/* Encodes one line (no newline handling; any bytes, including NUL and invalid
 * UTF-8, which is normalized to U+FFFD per byte as sentencepiece does).
 * On success *ids points to *n ids owned by the encoder, valid until the next
 * call. Ids are identical to libsentencepiece's EncodeAsIds. */
int tkm_encode(tkm_encoder *e, const char *text, size_t len, const int32_t **ids, size_t *n);

/* The pieces of text as libsentencepiece's Encode(text, &pieces) gives
 * them, joined by single spaces (the form of a model's self-test data): a
 * run of unknown characters is one piece, its normalized text. *out is
 * allocated (NUL-terminated; free with tkm_free). TKM_ENOTSUP for models
 * read from tokenizer.json or tiktoken files. */
int tkm_encode_pieces(tkm_encoder *e, const char *text, size_t len, char **out, size_t *outlen);

/* Decodes ids to text exactly as libsentencepiece's DecodeIds. *out is
 * allocated (NUL-terminated, *outlen excludes the NUL); free with tkm_free.
 * @return 0, or TKM_ERANGE for an id outside the vocabulary. */
int tkm_decode(const tkm_model *m, const int32_t *ids, size_t n, char **out, size_t *outlen);

/* ---- streamed input ------------------------------------------------------- */
typedef struct tkm_reader tkm_reader;

/* Opens a file for line reading; "-" is stdin; gzip input is detected by its
 * magic bytes and decompressed on the fly. */
int tkm_reader_open(const char *path, tkm_reader **out);
/* Next line without its '\n' (a '\r' is kept, as sentencepiece does). Lines
 * may be of any length. @return 1 with a line, 0 at end of input, <0 on error
 * (e.g. a corrupt gzip stream; the message names file and line). */
int tkm_reader_next(tkm_reader *r, const char **line, size_t *len);
uint64_t tkm_reader_lineno(const tkm_reader *r);   /* 1-based, last line returned */
uint64_t tkm_reader_bytes(const tkm_reader *r);    /* uncompressed bytes read */
void tkm_reader_close(tkm_reader *r);

/* ---- trainer -------------------------------------------------------------- */
enum { TKM_BALANCE_BUDGET = 0, TKM_BALANCE_WEIGHTS = 1 };

typedef struct tkm_train_options {
    tkm_model_type model_type;       /* TKM_MODEL_BPE, _UNIGRAM, _CHAR or _WORD */
    int vocab_size;                  /* total pieces incl. specials, <= 1<<20 */
    float character_coverage;        /* 0.9995 */
    int max_piece_length;            /* 16 (characters) */
    int split_digits;                /* 0 */
    int split_by_unicode_script;     /* 1 */
    int split_by_number;             /* 1 */
    int split_by_whitespace;         /* 1; 0: pieces may span words ("foo\u2581bar") */
    int allow_whitespace_only_pieces;/* 0 */
    int byte_fallback;               /* 0 */
    int add_dummy_prefix;            /* 0 (sentencepiece's default is 1) */
    int remove_extra_whitespaces;    /* 0 (sentencepiece's default is 1) */
    int hard_vocab_limit;            /* 1: fail if vocab_size cannot be reached */
    int unk_id, bos_id, eos_id, pad_id;   /* 0, 1, 2, -1 (-1 disables) */
    const char *unk_piece, *bos_piece, *eos_piece, *pad_piece;
    const char *unk_surface;         /* " \xE2\x81\x87 " */
    const char *const *user_defined_symbols; int n_user_defined;
    const char *const *control_symbols; int n_control;
    int threads;                     /* counting threads, >= 1 */
    /* bytes the pre-token tables may hold while counting (0: no limit);
     * past it, counting spills sorted runs to temporary files ($TMPDIR)
     * and merges them at the end: exact counts, the same model */
    uint64_t max_memory;
    /* BPE: target shares of all pieces (0..1, < 0: no target) for
     * latin (Latin letters, >= 2 chars, leading U+2581 allowed) and japanese
     * (Han/kana/U+30FC only, leading U+2581 allowed); "other" takes the rest */
    float balance_latin, balance_japanese;
    /* 1: counts are weighted per input (tkm_trainer_add_file_weighted);
     * a pre-token then counts weight x 100 */
    int weighted;
    /* BPE balancing method: TKM_BALANCE_BUDGET (per-class merge budgets)
     * or TKM_BALANCE_WEIGHTS (per-class count weights searched so that the
     * merge loop reaches the shares, then the budgets make them exact);
     * see tokenmill-train(1) for the measured default */
    int balance_method;
    /* Unigram only */
    int seed_size;                   /* seed pieces (1000000) */
    float shrinking_factor;          /* pieces kept per pruning round (0.75) */
    int num_sub_iterations;          /* EM rounds between prunings (2) */
    /* Normalization (sentencepiece's normalization_rule_name / _tsv):
     * NULL or "identity" (tokenmill's default), "nmt_nfkc", "nfkc",
     * "nmt_nfkc_cf", "nfkc_cf"; a rule TSV (lines "SRC<TAB>DST", code points
     * in hex separated by spaces) replaces the named rule. The rules are
     * written into the model as sentencepiece's precompiled_charsmap. */
    const char *normalization_rule_name;
    const char *normalization_rule_tsv;
    /* sentencepiece's input filter (0: off, tokenmill's default, which
     * reads everything): lines longer than max_sentence_length bytes, and
     * with skip_unk_lines lines holding U+2047 (sentencepiece's unknown
     * mark), are skipped and counted in tkm_train_stats.skipped_lines */
    int max_sentence_length;
    int skip_unk_lines;
    /* TKM_MODEL_CHAR / TKM_MODEL_WORD only: every character / word becomes
     * a piece, the vocabulary grows to hold them (sentencepiece's use_all_vocab) */
    int use_all_vocab;
    /* sentencepiece's input_format=tsv: every line is TEXT<TAB>COUNT (one
     * tab, COUNT an integer >= 1) and counts COUNT times */
    int input_tsv;
    /* sentencepiece's required_chars: UTF-8 characters kept before the
     * coverage is counted (even when absent from the corpus); NULL: none */
    const char *required_chars;
    /* sentencepiece's denormalization_rule_tsv: rules (same format as
     * normalization_rule_tsv) that decoding applies to the decoded text;
     * written as the model's denormalizer_spec. NULL: none */
    const char *denormalization_rule_tsv;
    /* sentencepiece's treat_whitespace_as_suffix: U+2581 ends a piece
     * ("foo\u2581") instead of starting it, and the dummy prefix goes to the
     * end of the line; the encoder reads it from the model */
    int treat_whitespace_as_suffix;
    /* sentencepiece's pretokenization_delimiter (BPE, Unigram): no piece
     * spans this string in the normalized text, which is dropped from the
     * training text (its characters are not counted); NULL or "": none */
    const char *pretokenization_delimiter;
    /* sentencepiece's seed_sentencepieces_file (Unigram): seed pieces from
     * PIECE<TAB>FREQ lines instead of from the corpus; NULL: none */
    const char *seed_sentencepieces_file;
    /* sentencepiece's differential privacy (Unigram only): with
     * enable_differential_privacy, each unique pre-token's count gets
     * normal noise of standard deviation differential_privacy_noise_level
     * (if > 0; drawn from random_seed and the pre-token, so the model is
     * reproducible), is rounded at >= 0, and pre-tokens counted less than
     * differential_privacy_clipping_threshold are dropped, before the
     * character coverage and the seeds are counted. Off: 0. */
    int enable_differential_privacy;
    double differential_privacy_noise_level;
    uint64_t differential_privacy_clipping_threshold;
    uint64_t random_seed;
} tkm_train_options;

/* Fills sentencepiece-compatible defaults (with identity normalization and no
 * dummy prefix, tokenmill's defaults). */
void tkm_train_options_init(tkm_train_options *o);

typedef struct tkm_trainer tkm_trainer;

/* Progress callback: phase name and two counters (bytes read and total, or
 * merges done and total). Called from the thread that drives training. */
typedef void (*tkm_progress_fn)(void *ctx, const char *phase, uint64_t done, uint64_t total);

int tkm_trainer_new(const tkm_train_options *o, tkm_trainer **out);
void tkm_trainer_free(tkm_trainer *t);
void tkm_trainer_set_progress(tkm_trainer *t, tkm_progress_fn fn, void *ctx);
/* Streams a file ("-" = stdin, .gz ok) into the pre-token counts. */
int tkm_trainer_add_file(tkm_trainer *t, const char *path);
/* As tkm_trainer_add_file, each pre-token counting `weight` times (0 <
 * weight <= 1000, in steps of 0.01); needs options.weighted = 1. */
int tkm_trainer_add_file_weighted(tkm_trainer *t, const char *path, double weight);
/* Counts one more line (for callers that stream text themselves). */
int tkm_trainer_add_line(tkm_trainer *t, const char *line, size_t len);
/* Runs the merges and builds the model. */
int tkm_trainer_train(tkm_trainer *t, tkm_model **out);

typedef struct tkm_train_stats {
    uint64_t lines, bytes, invalid_utf8_bytes, nul_bytes, skipped_lines;
    uint64_t pretokens_total, pretokens_unique;
    uint64_t chars_total, chars_unique, chars_required, chars_dropped_occurrences;
    int merges, pieces_normal, pieces_meta, pieces_byte, pieces_user, pieces_char;
    double seconds_count, seconds_merge, seconds_total;
    /* pieces per class (latin, japanese, other) and the balancing targets
     * (-1: none); balance_short[c] = 1 if class c ran out of candidates */
    int class_pieces[3];
    int class_target[3];
    int balance_short[3];
    /* Unigram: distinct candidate substrings (estimated), seed pieces kept,
     * and the counting passes that kept the seed tables bounded */
    uint64_t seed_candidates, seeds;
    int seed_passes;
    /* balancing: pieces class c received from classes that could not
     * reach their targets (shared in proportion to the targets) */
    int balance_gained[3];
    /* counting past max_memory: runs written, their bytes */
    uint64_t spill_runs, spill_bytes;
    /* balance_method weights: the count weight of pre-tokens of each class
     * (latin, japanese, other) and the merge loops the search ran */
    double balance_weight[3];
    int balance_trials;
    /* BPE and Unigram under max_memory: the estimated bytes of the merge
     * loop (BPE) or of the words at their peak (Unigram, whose words get
     * half of max_memory) for what was kept; when all pre-tokens would not
     * fit, those counted c < merge_drop_below times (0: none) are a
     * sample, each kept with probability c / merge_drop_below and then
     * counted merge_drop_below times (the expected counts unchanged):
     * sampled_unique were kept that way, merge_dropped_unique (with
     * merge_dropped_occurrences) were not */
    uint64_t merge_bytes_estimate;
    int64_t merge_drop_below;
    uint64_t merge_dropped_unique, merge_dropped_occurrences;
    /* differential privacy: unique pre-tokens (and their occurrences,
     * before the noise) dropped by the noise and the clipping threshold */
    uint64_t dp_dropped_unique, dp_dropped_occurrences;
    /* tkm_trainer_retrain_many: the merges this model took from a merge
     * loop shared with other points (0: none), and the CPU seconds of its
     * own merge loop (the part after the shared prefix) */
    int merges_shared;
    double seconds_merge_cpu;
    /* counting under max_memory: the count tables' share of it (the rest is
     * for line blocks, the process and a spill's scratch), and the seconds
     * spent writing runs (all threads' spills, wall time summed) and merging
     * them at the end */
    uint64_t count_table_bytes;
    double seconds_spill, seconds_spill_merge;
    /* (see merge_drop_below) */
    uint64_t sampled_unique;
} tkm_train_stats;
void tkm_trainer_stats(const tkm_trainer *t, tkm_train_stats *s);
/* Sweeps (one counting pass, many models): tkm_trainer_finish_counting
 * ends the counting and keeps the counted table; tkm_trainer_retrain then
 * trains a model from it with the training-stage options of o (model_type,
 * vocab_size, character_coverage, hard_vocab_limit, balance_latin,
 * balance_japanese, balance_method, seed_size, shrinking_factor,
 * num_sub_iterations; all other options stay those of tkm_trainer_new),
 * any number of times and from several threads at once (no progress
 * callback). The model is byte-identical to a separate run with the same
 * options. *st (may be NULL) gets that run's statistics. */
int tkm_trainer_finish_counting(tkm_trainer *t);
int tkm_trainer_retrain(tkm_trainer *t, const tkm_train_options *o, tkm_model **out, tkm_train_stats *st);
/* n models at once, out[i] and st[i] (st may be NULL) as
 * tkm_trainer_retrain(t, &o[i], ...) gives them (byte-identical models,
 * whatever `threads`), on up to `threads` threads; rc[i] gets point i's
 * result. BPE points with budget balancing (or none) that differ only in
 * their balance targets share their common prefix of the merge loop: one
 * unbalanced loop runs, and each balanced point goes on from a copy of its
 * state at the first merge its budgets block. Returns 0 or the first
 * point's error. */
int tkm_trainer_retrain_many(tkm_trainer *t, int n, const tkm_train_options *o, tkm_model **out, tkm_train_stats *st,
                             int *rc, int threads);

/* ---- count files (.tkc, tokenmill-count(1)) -------------------------------- */
/* Finishes counting (text and count files added so far) and writes the
 * unique pre-tokens with their counts, the counting options, the inputs and
 * their statistics as a count file (gzip; PATH.tmp.PID renamed; "-" is
 * standard output). A trainer made with the same counting options and given
 * the file with tkm_trainer_add_counts trains the model that counting the
 * text would, byte for byte. */
int tkm_trainer_write_counts(tkm_trainer *t, const char *path);
/* Adds a count file to the counts (read when training or writing counts;
 * the header is checked now). @return 0; TKM_EINVAL naming the file and the
 * first counting option that differs from t's (or weighted against
 * unweighted counts); TKM_EFORMAT (file and byte offset) for a damaged,
 * truncated or foreign file; TKM_EIO. */
int tkm_trainer_add_counts(tkm_trainer *t, const char *path);
/* Combines count files (same counting options) into one by a streaming
 * k-way merge: inputs concatenated in order, counts summed. *entries (may be
 * NULL): unique pre-tokens written. */
int tkm_counts_merge(const char *const *paths, int n, const char *out, uint64_t *entries);
/* Records an input name in the model's trainer_spec without reading it
 * (for callers that count the text elsewhere, e.g. other MPI ranks). */
int tkm_trainer_add_input_name(tkm_trainer *t, const char *path);

/* Counting spread over processes (tokenmill's MPI driver, cli/mpi_train.c,
 * or any other): each process counts part of the text, the counts are
 * exchanged by partition, and one trainer gathers them all.
 * Counts the lines of path that start in bytes [start, end) (a plain file;
 * start 0 and end UINT64_MAX: the whole file, which may be gzip or "-"),
 * with weight when options.weighted; the input is not named in the model
 * (tkm_trainer_add_input_name does that). */
int tkm_trainer_add_file_range(tkm_trainer *t, const char *path, uint64_t start, uint64_t end, double weight);
/* Finishes counting and splits the unique pre-tokens (text, count files,
 * records added so far) by hash into nparts disjoint parts, to be handed out
 * with tkm_trainer_part_chunk; st gets this trainer's input statistics
 * (lines, bytes, invalid UTF-8 bytes, NUL bytes, pre-tokens, skipped lines),
 * which it then forgets (the gathering trainer adds everyone's with
 * tkm_trainer_add_input_stats). Calling it again repartitions what was added
 * since with tkm_trainer_add_records. */
int tkm_trainer_partition(tkm_trainer *t, int nparts, uint64_t st[6]);
/* The next records of part (count-file record encoding, tokenmill-count(1),
 * front-coded within the chunk), about max_bytes at most (a longer record
 * goes alone); *len 0 when the part is done. *buf stays valid until the
 * next call. */
int tkm_trainer_part_chunk(tkm_trainer *t, int part, size_t max_bytes, const void **buf, size_t *len);
/* Adds records made by tkm_trainer_part_chunk (counts are summed). */
int tkm_trainer_add_records(tkm_trainer *t, const void *buf, size_t len);
int tkm_trainer_add_input_stats(tkm_trainer *t, const uint64_t st[6]);

/* ---- tokenizers of other libraries ---------------------------------------- */
/* Reads a Hugging Face tokenizer.json: BPE (Metaspace or Replace/Prepend
 * normalizers, byte-level pre-tokenization with Split/ByteLevel regexes,
 * Digits; byte fallback, unk fusing, added tokens) or Unigram. The model's
 * encoder runs HF's pipeline (added tokens, normalizers, pre-tokenizers,
 * then BPE by merge rank or sentencepiece's Unigram Viterbi per word) and
 * gives HF's ids for text (invalid UTF-8 becomes U+FFFD per byte; no
 * post-processor, i.e. add_special_tokens=False). Pieces of byte-level
 * tokenizers are raw bytes; their single non-ASCII bytes are typed BYTE.
 * Such a model cannot be saved or exported.
 * @return 0; TKM_ENOTSUP for what is not supported (WordPiece: "WordPiece
 * tokenizers are not supported", other normalizers or pre-tokenizers, with
 * the file and offset); TKM_EFORMAT, TKM_EIO, TKM_ENOMEM. */
int tkm_model_load_hf_json(const char *path, tkm_model **out);

/* Pre-tokenization patterns of tiktoken encodings. */
enum {
    TKM_TIKTOKEN_AUTO = 0,   /* from the file name (tkm_tiktoken_pattern_from_name) */
    TKM_TIKTOKEN_R50K = 1,   /* r50k_base, p50k_base (GPT-2's pattern) */
    TKM_TIKTOKEN_CL100K = 2, /* cl100k_base */
    TKM_TIKTOKEN_O200K = 3   /* o200k_base */
};
/* TKM_TIKTOKEN_* named by a file name containing o200k, cl100k, r50k, p50k
 * or gpt2; TKM_TIKTOKEN_AUTO if none. */
int tkm_tiktoken_pattern_from_name(const char *path);
/* Reads a tiktoken rank file (lines "base64-token rank"; id = rank) and
 * encodes as tiktoken does: split by the pattern, a piece that is a token
 * is taken whole, else bytes are merged lowest rank first. Special tokens
 * are not in rank files and are not known. @return 0; TKM_EINVAL when the
 * pattern is AUTO and the name tells nothing; TKM_EFORMAT (file and line). */
int tkm_model_load_tiktoken(const char *path, int pattern, tkm_model **out);
/* Loads a .model, a tokenizer.json (first non-blank byte '{') or a tiktoken
 * file (name ending in .tiktoken, or any name when tiktoken_pattern is not
 * AUTO). */
int tkm_model_load_any(const char *path, int tiktoken_pattern, tkm_model **out);

/* ---- HF tokenizer.json ---------------------------------------------------- */
/* Writes a model as a Hugging Face tokenizer.json that the `tokenizers`
 * library loads and that encodes text to the same ids as libsentencepiece.
 * BPE: model "BPE" with every piece in "vocab" and merges ordered by piece
 * score. Unigram: model "Unigram" with [piece, score] pairs, scores adjusted
 * so that HF's lattice is sentencepiece's (control, unknown and byte pieces
 * can never win; user-defined pieces get sentencepiece's bonus). Both: the
 * normalizer of the model's normalizer_spec (rules as HF's Precompiled
 * normalizer with the model's precompiled_charsmap), control/unk pieces (and BPE
 * user-defined pieces) as added tokens, sentencepiece's decoder. Written
 * atomically via tkmi_write_file_atomic (temp file + rename).
 * @return 0; TKM_ENOTSUP for what HF cannot express (other model types,
 * treat_whitespace_as_suffix; Unigram
 * models, see TKM_EXPORT_UNIGRAM_TIES, and Unigram models whose special
 * pieces could not be kept out of HF's lattice); TKM_EFORMAT for pieces
 * that are empty, duplicated or not UTF-8; TKM_EIO, TKM_ENOMEM. */
int tkm_model_export_hf_json(const tkm_model *m, const char *path);

/* Flags of tkm_model_export_hf_json_flags. */
enum {
    /* Export Unigram models although their ids can differ from
     * sentencepiece's on exact ties: HF adds path scores in double precision,
     * sentencepiece rounds them to float at every position, so two
     * segmentations of equal score (the same pieces in another order, e.g.
     * "!" "!!!" and "!!!" "!") are told apart by HF's first-found rule and by
     * sentencepiece's rounding. About one line in a thousand on our corpora;
     * every other line is identical. Without the flag, Unigram is refused. */
    TKM_EXPORT_UNIGRAM_TIES = 1
};
/* As tkm_model_export_hf_json, with TKM_EXPORT_* flags. */
int tkm_model_export_hf_json_flags(const tkm_model *m, const char *path, unsigned flags);

/* Writes a folder (created if missing) that transformers'
 * AutoTokenizer.from_pretrained loads (4.x and 5.x, fast or use_fast=False)
 * with ids equal to libsentencepiece's: tokenizer.json (as
 * tkm_model_export_hf_json_flags, written first, so a refused model leaves no
 * other file), tokenizer.model (the model), tokenizer_config.json
 * (PreTrainedTokenizerFast; no BOS/EOS added; split_special_tokens, so
 * special-piece text in the input is ordinary text as in sentencepiece) and
 * special_tokens_map.json: the model's own bos/eos/unk pieces and its pad
 * piece (or, without one, its EOS, else its unknown piece). Files are written
 * atomically. @return 0 or the errors of tkm_model_export_hf_json_flags;
 * TKM_EIO when the folder cannot be made. */
int tkm_model_export_hf_dir(const tkm_model *m, const char *dir, unsigned flags);

#ifdef __cplusplus
}
#endif
#endif /* TOKENMILL_H */
