/* Writes a tiny QuickDraw-like data folder for the examples' end-to-end test:
 * DIR/<category>.npy, uint8 (N, 784), 0 = background, 255 = ink. Three
 * categories of simple generated shapes (ring = "clock", cross = "star",
 * box = "book"; ae_test_draw in tests/support), each with random position
 * and size. */
#include <stdio.h>
#include <stdlib.h>

#include "test_support.h"

int main(int argc, char **argv)
{
    static const char *names[3] = {"clock", "star", "book"};
    static const ae_test_shape shapes[3] = {AE_TEST_RING, AE_TEST_CROSS, AE_TEST_BOX};
    const int n = argc > 2 ? atoi(argv[2]) : 120;
    unsigned char *buf;
    char path[4096];
    ae_test_rng r;
    if (argc < 2 || n < 2) {
        fprintf(stderr, "usage: make_tiny_quickdraw DIR [PER_CATEGORY]\n");
        return 2;
    }
    buf = malloc((size_t)n * 784);
    if (!buf) return 1;
    ae_test_rng_seed(&r, 1);
    for (int k = 0; k < 3; k++) {
        size_t dims[2] = {(size_t)n, 784};
        for (int i = 0; i < n; i++) ae_test_draw(buf + (size_t)i * 784, shapes[k], &r);
        snprintf(path, sizeof path, "%s/%s.npy", argv[1], names[k]);
        if (ae_test_write_npy_u8(path, 2, dims, buf) != 0) {
            free(buf);
            return 1;
        }
    }
    free(buf);
    return 0;
}
