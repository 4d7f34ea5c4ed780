/* fuzz_reader.c - libFuzzer target: the streamed line reader (plain text or
 * gzip, detected by magic bytes) that training, encoding and analysis read
 * corpora with. Lines must come back whole: their bytes plus one '\n' each
 * add up to what the reader says it read. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = fuzz_path("corpus.txt");
    fuzz_write(p, data, size);
    tkm_reader *r = NULL;
    if (tkm_reader_open(p, &r) < 0) return 0;
    const char *line;
    size_t len, total = 0;
    uint64_t lines = 0;
    int rc;
    volatile unsigned sink = 0;
    while ((rc = tkm_reader_next(r, &line, &len)) == 1) {
        for (size_t i = 0; i < len; i++) sink += (unsigned char)line[i];
        total += len + 1;
        lines++;
        FUZZ_CHECK(tkm_reader_lineno(r) == lines, "line number %llu, expected %llu",
                   (unsigned long long)tkm_reader_lineno(r), (unsigned long long)lines);
    }
    uint64_t got = tkm_reader_bytes(r);
    /* the last line may lack its newline */
    if (rc == 0) FUZZ_CHECK(got == total || got + 1 == total, "reader says %llu bytes, lines hold %zu",
                            (unsigned long long)got, total);
    if (rc == 0 && (size < 2 || data[0] != 0x1f || data[1] != 0x8b))
        FUZZ_CHECK(got == size, "plain input of %zu bytes, reader says %llu", size, (unsigned long long)got);
    tkm_reader_close(r);
    return 0;
}
