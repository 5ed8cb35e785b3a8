/*
 * What saving and loading do with the file system, for the three savers
 * (ae_model_save, ae_index_save, ae_npy_save_f32) and every loader:
 *
 *  - a new file gets the mode fopen would give it (0666 less the umask);
 *    a replaced file keeps its permission bits, whatever the umask;
 *  - a save refuses (AE_ERR_IO) to replace a read-only file, a file the
 *    caller may not write, or something that is not a regular file, and
 *    leaves it as it was;
 *  - every loader gives the same status for the same cause (a directory, a
 *    device, a FIFO, a missing file: AE_ERR_IO; an empty or truncated file:
 *    AE_ERR_FORMAT), and its message begins "<function>: '<file>'".
 *
 * The umask is set in forked children so that the test process's own stays
 * as it was. The tests run as root here, and root passes every permission
 * check; the read-only policy is therefore written in terms of mode bits
 * (docs/reliability.md) and tested with chmod, plus, when running as root, a
 * child that drops to an unprivileged user.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "autoenc/autoenc.h"
#include "test_support.h"

/* In the test folder; the result lives until 8 more calls. */
static const char *path_in(const char *name) { return ae_test_path("%s", name); }

/* ---- the three kinds of file, two versions of each ------------------------------ */
static ae_model *g_model[2];
static ae_index *g_index[2];
static float g_rows[2][6];
static const size_t g_rows_dims[2] = {2, 3};

static ae_status save_model(const char *path, int v) { return ae_model_save(g_model[v], path); }
static ae_status save_index(const char *path, int v) { return ae_index_save(g_index[v], path); }
static ae_status save_npy(const char *path, int v)
{
    return ae_npy_save_f32(path, g_rows[v], 2, g_rows_dims);
}

typedef struct kind {
    const char *ext;
    const char *saver; /* the public function, as messages name it */
    ae_status (*save)(const char *path, int version);
} kind;

static const kind g_kinds[] = {{"aem", "ae_model_save", save_model},
                               {"aeidx", "ae_index_save", save_index},
                               {"npy", "ae_npy_save_f32", save_npy}};
#define N_KINDS (sizeof g_kinds / sizeof *g_kinds)

static const char *kind_path(const char *stem, const kind *k)
{
    char name[96];
    snprintf(name, sizeof name, "%s.%s", stem, k->ext);
    return path_in(name);
}

static int setup(void **state)
{
    if (ae_test_group_setup(state) != 0) return -1;
    for (int v = 0; v < 2; v++) {
        ae_builder *b;
        size_t in[1] = {4};
        float x[5 * 3];
        for (int i = 0; i < 15; i++) x[i] = (float)((i * 7 + v * 3) % 11) - 5.0f;
        for (int i = 0; i < 6; i++) g_rows[v][i] = (float)(i + 10 * v);
        if (ae_builder_create(&b, 1, in) != AE_OK || ae_builder_dense(b, 3, AE_ACT_RELU) != AE_OK ||
            ae_builder_build(&g_model[v], b, 1 + (uint64_t)v) != AE_OK)
            return -1;
        ae_builder_free(b);
        if (ae_index_create(&g_index[v], AE_INDEX_BRUTE, AE_INDEX_L2, 3) != AE_OK ||
            ae_index_build(g_index[v], x, 5, NULL, NULL) != AE_OK)
            return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    for (int v = 0; v < 2; v++) {
        ae_model_free(g_model[v]);
        ae_index_free(g_index[v]);
    }
    chmod(ae_test_tmpdir(), 0700); /* test_other_user opens it up */
    return ae_test_group_teardown(state);
}

/* ---- helpers ------------------------------------------------------------------------ */
static unsigned file_mode(const char *path)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return (unsigned)(sb.st_mode & 07777);
}

/* Temporary files (`<target>.tmp-XXXXXX`) in the test folder or its
 * subfolder sub (may be NULL). */
static int count_tmp_files(const char *sub)
{
    int n = ae_test_find_names(sub ? path_in(sub) : ae_test_tmpdir(), ".tmp-", NULL, 0);
    assert_true(n >= 0);
    return n;
}

/* Runs saves in a child with the given umask (and, if uid is not -1, as that
 * user): version v of every kind to the paths of stem. Returns the child's
 * exit code: 0 when every save gave `want`, else 10 + the kind that did not. */
static int save_in_child(mode_t mask, long uid, const char *stem, int v, ae_status want)
{
    int status;
    pid_t pid;
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        umask(mask);
        if (uid >= 0 && (setgid((gid_t)uid) != 0 || setuid((uid_t)uid) != 0)) _exit(2);
        for (size_t k = 0; k < N_KINDS; k++)
            if (g_kinds[k].save(kind_path(stem, &g_kinds[k]), v) != want) _exit(10 + (int)k);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* ---- modes of saved files ------------------------------------------------------------ */
static void test_new_file_mode_follows_umask(void **state)
{
    static const mode_t masks[] = {022, 077, 027, 002, 0};
    (void)state;
    for (size_t i = 0; i < sizeof masks / sizeof *masks; i++) {
        char stem[32];
        snprintf(stem, sizeof stem, "new-%03o", (unsigned)masks[i]);
        assert_int_equal(save_in_child(masks[i], -1, stem, 0, AE_OK), 0);
        for (size_t k = 0; k < N_KINDS; k++) {
            unsigned got = file_mode(kind_path(stem, &g_kinds[k]));
            if (got != (0666u & ~(unsigned)masks[i]))
                fail_msg("%s saved under umask %03o has mode %04o, wanted %04o", g_kinds[k].ext,
                         (unsigned)masks[i], got, 0666u & ~(unsigned)masks[i]);
        }
    }
    assert_int_equal(count_tmp_files(NULL), 0);
}

static void test_replace_keeps_mode(void **state)
{
    static const unsigned modes[] = {0640, 0604, 0660, 0600, 0666};
    (void)state;
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
        char stem[32];
        snprintf(stem, sizeof stem, "keep-%03o", modes[i]);
        for (size_t k = 0; k < N_KINDS; k++) {
            const char *p = kind_path(stem, &g_kinds[k]);
            assert_int_equal(g_kinds[k].save(p, 0), AE_OK);
            assert_int_equal(chmod(p, (mode_t)modes[i]), 0);
        }
        /* a umask that would give another mode to a new file */
        assert_int_equal(save_in_child(077, -1, stem, 1, AE_OK), 0);
        for (size_t k = 0; k < N_KINDS; k++) {
            const char *p = kind_path(stem, &g_kinds[k]), *ref = kind_path("ref-v1", &g_kinds[k]);
            assert_int_equal(g_kinds[k].save(ref, 1), AE_OK);
            assert_true(ae_test_files_equal(p, ref)); /* replaced by version 1 */
            if (file_mode(p) != modes[i])
                fail_msg("%s replaced over mode %04o has mode %04o", g_kinds[k].ext, modes[i],
                         file_mode(p));
        }
    }
    assert_int_equal(count_tmp_files(NULL), 0);
}

/* ---- what a save refuses to replace --------------------------------------------------- */
static void expect_refused(const kind *k, const char *p, const char *needle)
{
    char head[300];
    ae_status st = k->save(p, 1);
    if (st != AE_ERR_IO) fail_msg("saving over %s: status %d (%s)", p, st, ae_last_error());
    snprintf(head, sizeof head, "%s: '%s': ", k->saver, p);
    if (strncmp(ae_last_error(), head, strlen(head)) != 0)
        fail_msg("saving over %s: the message '%s' does not begin with \"%s\"", p,
                 ae_last_error(), head);
    assert_non_null(strstr(ae_last_error(), needle));
}

static void test_read_only_target_refused(void **state)
{
    static const unsigned modes[] = {0444, 0400, 0440, 0555};
    (void)state;
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
        for (size_t k = 0; k < N_KINDS; k++) {
            const kind *kd = &g_kinds[k];
            const char *p = kind_path("ro", kd), *ref = kind_path("ref-v0", kd);
            assert_int_equal(kd->save(ref, 0), AE_OK);
            assert_int_equal(kd->save(p, 0), AE_OK);
            assert_int_equal(chmod(p, (mode_t)modes[i]), 0);
            expect_refused(kd, p, "read-only");
            assert_true(ae_test_files_equal(p, ref)); /* untouched */
            assert_int_equal(file_mode(p), modes[i]);
            /* giving the owner write permission is how to replace it */
            assert_int_equal(chmod(p, (mode_t)(modes[i] | 0200)), 0);
            assert_int_equal(kd->save(p, 1), AE_OK);
            assert_int_equal(file_mode(p), modes[i] | 0200);
            assert_int_equal(unlink(p), 0);
        }
    }
    assert_int_equal(count_tmp_files(NULL), 0);
}

/* An unprivileged user may not replace a file it has no write permission
 * for, even in a directory where it may create files (where rename alone
 * would succeed). Needs root to set up (skipped otherwise). */
static void test_other_user(void **state)
{
    const long nobody = 65534;
    (void)state;
    if (geteuid() != 0) {
        printf("[ fileio ] not root: the other-user case is skipped\n");
        return;
    }
    assert_int_equal(chmod(ae_test_tmpdir(), 0711), 0);
    assert_int_equal(mkdir(path_in("shared"), 0777), 0);
    assert_int_equal(chmod(path_in("shared"), 0777), 0);
    for (size_t k = 0; k < N_KINDS; k++) {
        const kind *kd = &g_kinds[k];
        const char *mine = kind_path("shared/mine", kd), *open_ = kind_path("shared/open", kd);
        const char *ref = kind_path("ref-v0", kd);
        assert_int_equal(kd->save(ref, 0), AE_OK);
        assert_int_equal(kd->save(mine, 0), AE_OK);
        assert_int_equal(chmod(mine, 0644), 0);
        assert_int_equal(kd->save(open_, 0), AE_OK);
        assert_int_equal(chmod(open_, 0666), 0);
    }
    {
        int rc = save_in_child(022, nobody, "shared/mine", 1, AE_ERR_IO);
        if (rc == 2) {
            printf("[ fileio ] cannot switch to uid %ld: the other-user case is skipped\n", nobody);
            return;
        }
        assert_int_equal(rc, 0);
    }
    assert_int_equal(save_in_child(022, nobody, "shared/open", 1, AE_OK), 0);
    for (size_t k = 0; k < N_KINDS; k++) {
        const kind *kd = &g_kinds[k];
        struct stat sb;
        assert_true(ae_test_files_equal(kind_path("shared/mine", kd), kind_path("ref-v0", kd)));
        assert_int_equal(file_mode(kind_path("shared/mine", kd)), 0644);
        /* the replacement keeps the mode; it belongs to its writer */
        assert_int_equal(stat(kind_path("shared/open", kd), &sb), 0);
        assert_int_equal(sb.st_mode & 07777, 0666);
        assert_int_equal(sb.st_uid, (uid_t)nobody);
    }
    assert_int_equal(count_tmp_files("shared"), 0);
}

static void test_non_regular_target_refused(void **state)
{
    (void)state;
    for (size_t k = 0; k < N_KINDS; k++) {
        const kind *kd = &g_kinds[k];
        const char *fifo = kind_path("fifo", kd), *dir = kind_path("dir", kd);
        struct stat sb;
        assert_int_equal(mkfifo(fifo, 0644), 0);
        assert_int_equal(mkdir(dir, 0755), 0);
        expect_refused(kd, fifo, "FIFO");
        expect_refused(kd, dir, "directory");
        assert_int_equal(lstat(fifo, &sb), 0);
        assert_true(S_ISFIFO(sb.st_mode));
        assert_int_equal(lstat(dir, &sb), 0);
        assert_true(S_ISDIR(sb.st_mode));
    }
    assert_int_equal(count_tmp_files(NULL), 0);
}

/* ---- every loader: one status per cause ------------------------------------------------ */
static ae_status ld_npy_info(const char *p) { return ae_npy_info(NULL, NULL, NULL, p); }
static ae_status ld_npy_load(const char *p)
{
    ae_tensor *t = NULL;
    ae_status st = ae_npy_load(&t, p, 1.0f);
    ae_tensor_free(t);
    return st;
}
static ae_status ld_npy_load_rows(const char *p)
{
    ae_tensor *t = NULL;
    ae_status st = ae_npy_load_rows(&t, p, 1, 1.0f);
    ae_tensor_free(t);
    return st;
}
static ae_status ld_npy_read_rows(const char *p)
{
    float buf[16];
    return ae_npy_read_rows(p, 0, 1, 1.0f, buf, 16);
}
static ae_status ld_model(const char *p)
{
    ae_model *m = NULL;
    ae_status st = ae_model_load(&m, p);
    ae_model_free(m);
    return st;
}
static ae_status ld_index(const char *p)
{
    ae_index *x = NULL;
    ae_status st = ae_index_load(&x, p);
    ae_index_free(x);
    return st;
}

typedef struct loader {
    const char *fn;
    ae_status (*load)(const char *path);
    const kind *format; /* the kind of file it reads (for truncated files) */
} loader;

static const loader g_loaders[] = {
    {"ae_npy_info", ld_npy_info, &g_kinds[2]},
    {"ae_npy_load", ld_npy_load, &g_kinds[2]},
    {"ae_npy_load_rows", ld_npy_load_rows, &g_kinds[2]},
    {"ae_npy_read_rows", ld_npy_read_rows, &g_kinds[2]},
    {"ae_model_load", ld_model, &g_kinds[0]},
    {"ae_index_load", ld_index, &g_kinds[1]},
};

static void expect_load(const loader *l, const char *path, ae_status want, const char *cause)
{
    ae_status st = l->load(path);
    if (st != want)
        fail_msg("%s on %s (%s): status %d (%s), wanted %d", l->fn, path, cause, st,
                 ae_last_error(), want);
    if (want != AE_OK) {
        char head[300];
        snprintf(head, sizeof head, "%s: '%s'", l->fn, path);
        if (strncmp(ae_last_error(), head, strlen(head)) != 0)
            fail_msg("%s on %s (%s): the message '%s' does not begin with \"%s\"", l->fn, path,
                     cause, ae_last_error(), head);
    }
}

/* Copies the first n bytes of src to dst. */
static void write_prefix(const char *src, const char *dst, long n)
{
    size_t len;
    unsigned char *b = ae_test_read_file(src, &len);
    assert_non_null(b);
    assert_true(n >= 0 && (size_t)n <= len);
    assert_int_equal(ae_test_write_file(dst, b, (size_t)n), 0);
    free(b);
}

static long file_size(const char *path)
{
    long n = ae_test_file_size(path);
    assert_true(n >= 0);
    return n;
}

static void test_loaders_agree(void **state)
{
    char dir[256], fifo[256], empty[256], missing[256];
    (void)state;
    snprintf(dir, sizeof dir, "%s", path_in("a-directory"));
    snprintf(fifo, sizeof fifo, "%s", path_in("a-fifo"));
    snprintf(empty, sizeof empty, "%s", path_in("empty"));
    snprintf(missing, sizeof missing, "%s", path_in("missing"));
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(mkfifo(fifo, 0644), 0);
    assert_int_equal(ae_test_write_file(empty, "", 0), 0);
    for (size_t i = 0; i < sizeof g_loaders / sizeof *g_loaders; i++) {
        const loader *l = &g_loaders[i];
        const char *whole = kind_path("whole", l->format), *cut = kind_path("cut", l->format);
        long len;
        expect_load(l, dir, AE_ERR_IO, "a directory");
        expect_load(l, "/dev/null", AE_ERR_IO, "a device");
        expect_load(l, "/dev/zero", AE_ERR_IO, "a device");
        expect_load(l, fifo, AE_ERR_IO, "a FIFO");
        expect_load(l, missing, AE_ERR_IO, "a missing file");
        expect_load(l, empty, AE_ERR_FORMAT, "an empty file");
        /* truncated: in the first bytes, in the header, in the middle, by one byte */
        assert_int_equal(l->format->save(whole, 0), AE_OK);
        len = file_size(whole);
        expect_load(l, whole, AE_OK, "the whole file");
        {
            const long cuts[] = {1, 9, 40, len / 2, len - 4, len - 1};
            for (size_t c = 0; c < sizeof cuts / sizeof *cuts; c++) {
                char cause[64];
                write_prefix(whole, cut, cuts[c]);
                snprintf(cause, sizeof cause, "truncated to %ld of %ld bytes", cuts[c], len);
                expect_load(l, cut, AE_ERR_FORMAT, cause);
            }
        }
    }
}

/* ae_dataset_load reads the *.npy files of a folder: an unreadable folder is
 * AE_ERR_IO, a bad file AE_ERR_FORMAT, with the loader's and the file's names.
 * (Entries that are not regular files are not categories: docs of
 * ae_dataset_load.) */
static void test_dataset_loader_agrees(void **state)
{
    char whole[256];
    ae_dataset *ds = NULL;
    const struct {
        const char *dir;
        long bytes; /* of x.npy: -1 none, else a prefix of a valid file */
        ae_status want;
    } cases[] = {
        {"/dev/null", -1, AE_ERR_IO},       /* a device, not a folder */
        {"ds-missing", -1, AE_ERR_IO},
        {"ds-empty", 0, AE_ERR_FORMAT},
        {"ds-short", 9, AE_ERR_FORMAT},
        {"ds-cut", -2, AE_ERR_FORMAT},      /* -2: all but the last byte */
    };
    (void)state;
    snprintf(whole, sizeof whole, "%s", path_in("ds-whole.npy"));
    assert_int_equal(save_npy(whole, 0), AE_OK);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *dir = cases[i].dir[0] == '/' ? cases[i].dir : path_in(cases[i].dir);
        const char *file = dir;
        ae_status st;
        if (cases[i].bytes != -1) {
            char name[64];
            assert_int_equal(mkdir(dir, 0755), 0);
            snprintf(name, sizeof name, "%s/x.npy", cases[i].dir);
            file = path_in(name);
            write_prefix(whole, file, cases[i].bytes == -2 ? file_size(whole) - 1 : cases[i].bytes);
        }
        st = ae_dataset_load(&ds, dir, 0, 0.1, 1);
        if (st != cases[i].want)
            fail_msg("ae_dataset_load(%s): status %d (%s), wanted %d", dir, st, ae_last_error(),
                     cases[i].want);
        assert_null(ds);
        {
            char head[300];
            snprintf(head, sizeof head, "ae_dataset_load: '%s'", file);
            if (strncmp(ae_last_error(), head, strlen(head)) != 0)
                fail_msg("ae_dataset_load(%s): the message '%s' does not begin with \"%s\"", dir,
                         ae_last_error(), head);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_file_mode_follows_umask),
        cmocka_unit_test(test_replace_keeps_mode),
        cmocka_unit_test(test_read_only_target_refused),
        cmocka_unit_test(test_other_user),
        cmocka_unit_test(test_non_regular_target_refused),
        cmocka_unit_test(test_loaders_agree),
        cmocka_unit_test(test_dataset_loader_agrees),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
