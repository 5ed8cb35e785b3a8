/* Writes a tiny QuickDraw-like data folder for the examples' end-to-end test:
 * DIR/<category>.npy, uint8 (N, 784), 0 = background, 255 = ink. Three
 * categories of simple generated shapes (ring = "clock", cross = "star",
 * bar = "book"), each with random position and size. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long long state = 88172645463325252ull;
static double uniform(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (double)(state >> 11) * 0x1.0p-53;
}

static void draw(unsigned char *img, int kind)
{
    double cx = 9 + 10 * uniform(), cy = 9 + 10 * uniform(), r = 4 + 5 * uniform();
    memset(img, 0, 784);
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++) {
            double dx = x - cx, dy = y - cy, d = sqrt(dx * dx + dy * dy);
            int ink = kind == 0 ? fabs(d - r) < 1.2
                    : kind == 1 ? (fabs(dx) < 1.2 || fabs(dy) < 1.2) && d < r
                                : fabs(dy) < r / 2 && fabs(dx) < 1.5 * r && (fabs(fabs(dy) - r / 2) < 1.2 || fabs(fabs(dx) - 1.5 * r) < 1.2);
            img[y * 28 + x] = ink ? 255 : 0;
        }
}

static int write_npy(const char *path, const unsigned char *data, int n)
{
    char header[128];
    FILE *f = fopen(path, "wb");
    int len;
    if (!f) return -1;
    len = snprintf(header, sizeof header, "{'descr': '|u1', 'fortran_order': False, 'shape': (%d, 784), }", n);
    while ((10 + len + 1) % 64) header[len++] = ' ';
    header[len++] = '\n';
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(len & 0xFF, f);
    fputc(len >> 8, f);
    fwrite(header, 1, (size_t)len, f);
    fwrite(data, 784, (size_t)n, f);
    return fclose(f);
}

int main(int argc, char **argv)
{
    static const char *names[3] = {"clock", "star", "book"};
    const int n = argc > 2 ? atoi(argv[2]) : 120;
    unsigned char *buf;
    char path[4096];
    if (argc < 2 || n < 2) {
        fprintf(stderr, "usage: make_tiny_quickdraw DIR [PER_CATEGORY]\n");
        return 2;
    }
    buf = malloc((size_t)n * 784);
    if (!buf) return 1;
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < n; i++) draw(buf + (size_t)i * 784, k);
        snprintf(path, sizeof path, "%s/%s.npy", argv[1], names[k]);
        if (write_npy(path, buf, n) != 0) {
            perror(path);
            free(buf);
            return 1;
        }
    }
    free(buf);
    return 0;
}
