/*
 * xarch native-compiler probe: a compact LZSS compressor and decompressor with a
 * CRC-32, written for xarch (same license as xarch). Real-world shaped code: hash
 * chains, bit flags, table-driven CRC, byte-level pointer arithmetic.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW 4096
#define MIN_MATCH 3
#define MAX_MATCH 18
#define HASH_BITS 12

static uint32_t crc_table[256];

static void crc_init(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
}

static uint32_t crc32(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    while (n--)
        c = crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static unsigned hash3(const uint8_t *p) {
    return ((unsigned)p[0] << 8 ^ (unsigned)p[1] << 4 ^ p[2]) & ((1u << HASH_BITS) - 1);
}

/* Returns the compressed size; out must hold 9/8 of n plus 2 bytes. */
size_t lzss_compress(const uint8_t *in, size_t n, uint8_t *out) {
    static long head[1 << HASH_BITS];
    static long prev[WINDOW];
    for (size_t i = 0; i < (1u << HASH_BITS); i++)
        head[i] = -1;
    size_t o = 0, i = 0;
    while (i < n) {
        size_t flag_at = o++;
        uint8_t flags = 0;
        for (int bit = 0; bit < 8 && i < n; bit++) {
            size_t best_len = 0, best_off = 0;
            if (i + MIN_MATCH <= n) {
                unsigned h = hash3(in + i);
                long cand = head[h];
                int chain = 32;
                while (cand >= 0 && i - (size_t)cand < WINDOW && chain--) {
                    size_t len = 0;
                    while (len < MAX_MATCH && i + len < n && in[cand + len] == in[i + len])
                        len++;
                    if (len > best_len) {
                        best_len = len;
                        best_off = i - (size_t)cand;
                    }
                    long next = prev[cand % WINDOW];
                    if (next >= cand)
                        break;
                    cand = next;
                }
                prev[i % WINDOW] = head[h];
                head[h] = (long)i;
            }
            if (best_len >= MIN_MATCH) {
                flags |= (uint8_t)(1u << bit);
                unsigned token = (unsigned)((best_off - 1) << 4 | (best_len - MIN_MATCH));
                out[o++] = (uint8_t)(token >> 8);
                out[o++] = (uint8_t)token;
                for (size_t k = 1; k < best_len; k++) {
                    if (i + k + MIN_MATCH <= n) {
                        unsigned h = hash3(in + i + k);
                        prev[(i + k) % WINDOW] = head[h];
                        head[h] = (long)(i + k);
                    }
                }
                i += best_len;
            } else {
                out[o++] = in[i++];
            }
        }
        out[flag_at] = flags;
    }
    return o;
}

size_t lzss_decompress(const uint8_t *in, size_t n, uint8_t *out, size_t cap) {
    size_t i = 0, o = 0;
    while (i < n) {
        uint8_t flags = in[i++];
        for (int bit = 0; bit < 8 && i < n; bit++) {
            if (flags & (1u << bit)) {
                if (i + 1 >= n)
                    return (size_t)-1;
                unsigned token = (unsigned)in[i] << 8 | in[i + 1];
                i += 2;
                size_t off = (token >> 4) + 1, len = (token & 15) + MIN_MATCH;
                if (off > o || o + len > cap)
                    return (size_t)-1;
                for (size_t k = 0; k < len; k++, o++)
                    out[o] = out[o - off];
            } else {
                if (o >= cap)
                    return (size_t)-1;
                out[o++] = in[i++];
            }
        }
    }
    return o;
}

int main(void) {
    enum { N = 200000 };
    uint8_t *text = malloc(N), *packed = malloc(N + N / 8 + 2), *back = malloc(N);
    if (!text || !packed || !back)
        return 2;
    uint32_t x = 2463534242u;
    static const char *words[] = {"emulated ", "native ", "compiler ", "leaf ", "hook ",
                                  "probe ", "equivalent ", "xarch "};
    size_t pos = 0;
    while (pos < N) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        const char *w = words[x % 8];
        size_t len = strlen(w);
        if (x % 29 == 0) {
            text[pos++] = (uint8_t)(x >> 8);
            continue;
        }
        for (size_t k = 0; k < len && pos < N; k++)
            text[pos++] = (uint8_t)w[k];
    }
    crc_init();
    size_t packed_n = lzss_compress(text, N, packed);
    size_t back_n = lzss_decompress(packed, packed_n, back, N);
    int same = back_n == N && memcmp(text, back, N) == 0;
    printf("in %d crc %08x packed %zu crc %08x roundtrip %s\n", N, crc32(text, N), packed_n,
           crc32(packed, packed_n), same ? "ok" : "FAILED");
    free(text);
    free(packed);
    free(back);
    return same ? 0 : 1;
}
