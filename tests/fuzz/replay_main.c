/* A main() for the fuzz harnesses when they are built without libFuzzer (any
 * compiler, e.g. the gcc ASan/UBSan and valgrind test passes): runs
 * LLVMFuzzerTestOneInput once per file named on the command line, descending
 * one level into directories. Used to replay tests/fuzz/regressions/. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "test_support.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
    size_t len;
    unsigned char *buf = ae_test_read_file(path, &len);
    if (!buf) return 1;
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    int bad = 0, files = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "no such file: %s\n", argv[i]);
            return 1;
        }
        if (S_ISDIR(st.st_mode)) {
            DIR *d = opendir(argv[i]);
            struct dirent *e;
            if (!d) return 1;
            while ((e = readdir(d)) != NULL) {
                char p[4096];
                if (e->d_name[0] == '.') continue;
                snprintf(p, sizeof p, "%s/%s", argv[i], e->d_name);
                if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
                    bad |= replay_file(p);
                    files++;
                }
            }
            closedir(d);
        } else {
            bad |= replay_file(argv[i]);
            files++;
        }
    }
    printf("replayed %d file(s)\n", files);
    return bad;
}
