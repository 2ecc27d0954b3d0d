/*
 * test_fuzz_regress_config.c — inputs fuzz_config found that the
 * configuration reader mishandled, replayed through the normal build (the
 * fuzzer's own files are in tests/fuzz/regress/config/).
 *
 *  - A directive line holding bytes that are not UTF-8 ("%X \xd2") sent
 *    libfyaml's scanner into an endless loop: config_parse now refuses text
 *    that is not printable UTF-8 before libfyaml sees it, naming the line
 *    and byte. An alarm turns a hang back into a failure.
 *  - A class folder name with a line break ("a\nb", from a folded plain
 *    scalar) reached the error message through its key, so the "one line"
 *    error was two.
 *  - A bad data.split scalar was printed with "%.48s", but libfyaml's
 *    scalars are not NUL-terminated: the message read past the end of the
 *    text when the scalar ended it (AddressSanitizer: heap-buffer-overflow;
 *    run this under -DCTSWEEP_SANITIZE=address,undefined).
 *
 * And what the first fix asks of the printer: a value holding a C1 control
 * (written as an escape, "\u0080") is printed escaped, so config_print's
 * text still parses back to the same configuration.
 *
 * usage: test_fuzz_regress_config SCRATCH_DIR SHARED_DATA_DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "util/util.h"

#include "check.h"

#define GRID "grid: {model: [vgg16], epochs: [1], batch_size: [1], clr: [{mode: constant}]}\n"

static const char *g_name;

static int parse(const char *text, size_t len, CtError *err) {
    SweepConfig cfg;
    int rc = config_parse(&cfg, g_name, text, len, err);
    config_free(&cfg);
    return rc;
}

// Refused with "NAME:LINE: yaml: byte N ... not printable UTF-8".
static void refused_text(const char *label, const char *text, size_t len, int line, size_t byte) {
    CtError err = {{0}};
    int rc = parse(text, len, &err);
    char want[600];
    snprintf(want, sizeof want, "%s:%d: yaml: byte %zu ", g_name, line, byte);
    CHECK(rc != 0 && strncmp(err.msg, want, strlen(want)) == 0 && strstr(err.msg, "not printable UTF-8"),
          "%s: got rc %d, '%s'; want '%s...'", label, rc, err.msg, want);
    printf("ok   %s refused\n", label);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s SCRATCH_DIR SHARED_DATA_DIR\n", argv[0]);
        return 2;
    }
    alarm(60);  // the hang this guards against would otherwise stall ctest
    char *name = ct_asprintf("%s/regress.yaml", argv[1]);
    g_name = name;

    // regress/config/directive_invalid_utf8_hang, reduced.
    refused_text("directive with a stray lead byte", "%X \xd2\n", 5, 1, 4);
    refused_text("directive cut in a sequence", "%YAMLE 1\xd2\xcd\xf5\xd3--\ndata: {}\n", 18, 1, 9);
    refused_text("stray byte on line 3", GRID "# ok\n\xd2\n", strlen(GRID) + 7, 3, strlen(GRID) + 6);
    refused_text("NUL", GRID "\0", strlen(GRID) + 1, 2, strlen(GRID) + 1);
    refused_text("DEL", "a: \x7f\n", 5, 1, 4);
    refused_text("C1 control", "a: \xc2\x80\n", 6, 1, 4);
    refused_text("overlong /", "a: \xc0\xaf\n", 6, 1, 4);
    refused_text("surrogate", "a: \xed\xa0\x80\n", 7, 1, 4);
    refused_text("U+FFFE", "a: \xef\xbf\xbe\n", 7, 1, 4);
    refused_text("cut at the end", "a: \xe2\x82", 5, 1, 4);

    // Printable UTF-8 (a BOM, accents, an emoji, NEL) still reads.
    const char ok[] = "\xef\xbb\xbf# caf\xc3\xa9 \xf0\x9f\x98\x80 \xc2\x85\n" GRID;
    CtError err = {{0}};
    CHECK(parse(ok, strlen(ok), &err) == 0, "printable UTF-8 refused: %s", err.msg);
    printf("ok   printable UTF-8 reads\n");

    // regress/config/class_name_line_break, reduced: the key holds a line
    // break; the message stays one line.
    const char br[] = "data:\n  classes: {\"a\\nb\": 0, c: 1}\n" GRID;
    int rc = parse(br, strlen(br), &err);
    CHECK(rc != 0 && strchr(err.msg, '\n') == NULL && strstr(err.msg, ":2: data.classes.a b: "),
          "class with a line break: rc %d, '%s'", rc, err.msg);
    printf("ok   a key with a line break gives a one-line error\n");
    // regress/config/split_scalar_unterminated, reduced: the scalar is the
    // last byte of a buffer of exactly its length.
    const char tail[] = GRID "data:\n  split: bogus";
    size_t n = strlen(tail);
    char *exact = ct_malloc(n);
    memcpy(exact, tail, n);
    rc = parse(exact, n, &err);
    CHECK(rc != 0 && strstr(err.msg, "data.split: expected files, fractions") &&
              strlen(err.msg) > 6 && strcmp(err.msg + strlen(err.msg) - 6, " bogus") == 0,
          "split scalar at the end of the text: rc %d, '%s'", rc, err.msg);
    free(exact);
    printf("ok   a bad data.split scalar is shown by its length\n");
    // A data root whose name holds U+0080, given as an escape.
    char *root = ct_asprintf("%s/c1\xc2\x80root", argv[1]), *a = ct_asprintf("%s/a", root),
         *b = ct_asprintf("%s/b", root);
    if (ct_mkdirs(a, &err) || ct_mkdirs(b, &err)) {
        printf("FAIL %s\n", err.msg);
        return 2;
    }
    const char c1[] = "data: {root: \"c1\\u0080root\", classes: {a: 0, b: 1}}\n" GRID;
    SweepConfig cfg, back;
    rc = config_parse(&cfg, g_name, c1, strlen(c1), &err);
    CHECK(rc == 0, "root with U+0080: %s", err.msg);
    if (rc == 0) {
        char *t1 = NULL, *t2 = NULL;
        size_t l1 = 0, l2 = 0;
        FILE *f = open_memstream(&t1, &l1);
        config_print(f, &cfg);
        fclose(f);
        CHECK(strstr(t1, "c1\\u0080root") != NULL, "U+0080 printed raw:\n%s", t1);
        rc = config_parse(&back, g_name, t1, l1, &err);
        CHECK(rc == 0, "printed root with U+0080 does not parse: %s", err.msg);
        if (rc == 0) {
            f = open_memstream(&t2, &l2);
            config_print(f, &back);
            fclose(f);
            CHECK(strcmp(t1, t2) == 0 && strcmp(cfg.data.root, back.data.root) == 0, "round trip differs");
            config_free(&back);
            free(t2);
        }
        config_free(&cfg);
        free(t1);
    }
    printf("ok   a root holding U+0080 prints escaped and reads back\n");
    free(root);
    free(a);
    free(b);
    free(name);
    return check_summary();
}
