/*
 * test_sha256.c — SHA-256 against the FIPS 180-4 / NIST example vectors,
 * including input fed in awkward pieces.
 */
#include <stdio.h>
#include <string.h>

#include "util/sha256.h"

static int check(const char *label, const char *msg, size_t len, size_t piece, const char *want) {
    Sha256 s;
    uint8_t d[32];
    char hex[65];
    sha256_init(&s);
    for (size_t i = 0; i < len; i += piece) sha256_update(&s, msg + i, len - i < piece ? len - i : piece);
    sha256_final(&s, d);
    sha256_hex(d, 32, hex);
    int ok = strcmp(hex, want) == 0;
    printf("%s %s (pieces of %zu): %s\n", ok ? "ok  " : "FAIL", label, piece, hex);
    return ok;
}

int main(void) {
    static char million[1000000];
    memset(million, 'a', sizeof million);
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    int pass = 0, fail = 0;
    size_t pieces[] = {1, 3, 63, 64, 65, 1000000};
    for (size_t p = 0; p < sizeof pieces / sizeof pieces[0]; p++) {
        int r[4];
        r[0] = check("empty", "", 0, pieces[p], "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        r[1] = check("abc", "abc", 3, pieces[p], "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        r[2] = check("448 bits", two, strlen(two), pieces[p],
                     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
        r[3] = check("million a", million, sizeof million, pieces[p],
                     "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
        for (int i = 0; i < 4; i++) r[i] ? pass++ : fail++;
    }
    printf("%d passed, %d failed\n", pass, fail);
    return fail ? 1 : 0;
}
