/* .npy reader and writer: valid files of every accepted kind, written by the
 * test itself, and malformed ones that must fail with AE_ERR_FORMAT, a
 * message, and no leaked allocation (a counting allocator checks that). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "internal.h"

#include "test_support.h"

/* ---- file builders ---------------------------------------------------------- */
static void write_bytes(const char *path, const void *p, size_t n)
{
    assert_int_equal(ae_test_write_file(path, p, n), 0);
}

static void write_npy(const char *path, int major, const char *dict, size_t align,
                      const void *data, size_t data_len)
{
    assert_int_equal(ae_test_write_npy(path, major, dict, align, data, data_len), 0);
}

static unsigned char g_u8[4096];
static float g_f32[1024];

static void fill_data(void)
{
    for (size_t i = 0; i < sizeof g_u8; i++) g_u8[i] = (unsigned char)(i * 37 % 256);
    for (size_t i = 0; i < 1024; i++) g_f32[i] = (float)i * 0.5f - 100.0f;
}

static void check_tensor(ae_tensor *t, int rank, const size_t *dims)
{
    assert_non_null(t);
    assert_int_equal(ae_tensor_rank(t), rank);
    for (int i = 0; i < rank; i++) assert_int_equal(ae_tensor_dim(t, i), dims[i]);
}

/* ---- valid files ---------------------------------------------------------------- */
static void valid_u8_2d_v1(void **state)
{
    ae_tensor *t = NULL;
    size_t dims[2] = {3, 4};
    (void)state;
    fill_data();
    write_npy(ae_test_path("u8.npy"), 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 4), }",
              64, g_u8, 12);
    assert_int_equal(ae_npy_load(&t, ae_test_path("u8.npy"), AE_NPY_U8_UNIT), AE_OK);
    check_tensor(t, 2, dims);
    for (size_t i = 0; i < 12; i++)
        assert_float_equal(ae_tensor_data(t)[i], g_u8[i] / 255.0f, 1e-6);
    ae_tensor_free(t);
    /* scale 1 keeps 0..255 */
    assert_int_equal(ae_npy_load(&t, ae_test_path("u8.npy"), 1.0f), AE_OK);
    for (size_t i = 0; i < 12; i++) assert_true(ae_tensor_data(t)[i] == (float)g_u8[i]);
    ae_tensor_free(t);
}

static void valid_u8_variants(void **state)
{
    /* '<u1', both key orders, double quotes, padding variants, no trailing
     * comma, extra spaces, v1/v2/v3, 1-D/2-D/3-D/4-D */
    static const struct {
        int major;
        size_t align;
        const char *dict;
        int rank;
        size_t dims[4];
    } cases[] = {
        {1, 64, "{'descr': '<u1', 'fortran_order': False, 'shape': (3, 4), }", 2, {3, 4}},
        {1, 16, "{'descr': '|u1', 'fortran_order': False, 'shape': (12,), }", 1, {12}},
        {1, 0, "{'descr': '|u1', 'fortran_order': False, 'shape': (12,)}", 1, {12}},
        {1, 64, "{'shape': (2, 2, 3), 'fortran_order': False, 'descr': '|u1'}", 3, {2, 2, 3}},
        {1, 64, "{'fortran_order': False, 'descr': '|u1', 'shape': (3,1,4),}", 3, {3, 1, 4}},
        {1, 64, "{  \"descr\" : \"|u1\" ,\"fortran_order\":False,  'shape':( 2 , 6 ) ,  }", 2,
         {2, 6}},
        {2, 64, "{'descr': '|u1', 'fortran_order': False, 'shape': (4, 3), }", 2, {4, 3}},
        {3, 64, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3, 2), }", 3, {2, 3, 2}},
        {2, 0, "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 2, 3, 2), }", 4,
         {1, 2, 3, 2}},
        {1, 64, "{'descr': '|u1', 'fortran_order': False, 'shape': (3L, 4L), }", 2, {3, 4}},
    };
    (void)state;
    fill_data();
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ae_tensor *t = NULL;
        ae_npy_dtype dtype = AE_NPY_U8;
        int rank = 0;
        size_t dims[AE_TENSOR_MAX_RANK];
        write_npy(ae_test_path("v.npy"), cases[c].major, cases[c].dict, cases[c].align, g_u8, 12);
        assert_int_equal(ae_npy_info(&dtype, &rank, dims, ae_test_path("v.npy")),
                         AE_OK);
        assert_int_equal(dtype, AE_NPY_U8);
        assert_int_equal(rank, cases[c].rank);
        for (int i = 0; i < AE_TENSOR_MAX_RANK; i++)
            assert_int_equal(dims[i], i < rank ? cases[c].dims[i] : 0);
        assert_int_equal(ae_npy_load(&t, ae_test_path("v.npy"), 2.0f), AE_OK);
        check_tensor(t, cases[c].rank, cases[c].dims);
        for (size_t i = 0; i < 12; i++) assert_true(ae_tensor_data(t)[i] == 2.0f * g_u8[i]);
        ae_tensor_free(t);
    }
}

static void valid_f32(void **state)
{
    static const struct {
        int major;
        const char *dict;
        int rank;
        size_t dims[3];
        size_t n;
    } cases[] = {
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", 1, {5}, 5},
        {2, "{'descr': '<f4', 'fortran_order': False, 'shape': (6, 784), }", 2, {6, 784}, 0},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 28, 16), }", 3, {2, 28, 16},
         896},
        {3, "{'fortran_order': False, 'shape': (4, 1, 7), 'descr': '<f4'}", 3, {4, 1, 7}, 28},
    };
    (void)state;
    fill_data();
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ae_tensor *t = NULL;
        size_t n = cases[c].n;
        float *big = NULL;
        const float *src = g_f32;
        if (n == 0) { /* (6, 784): more than g_f32 holds */
            n = 6 * 784;
            big = malloc(n * sizeof *big);
            assert_non_null(big);
            for (size_t i = 0; i < n; i++) big[i] = (float)i / 7.0f;
            src = big;
        }
        write_npy(ae_test_path("f.npy"), cases[c].major, cases[c].dict, 64, src, n * 4);
        /* the scale does not apply to float32 */
        assert_int_equal(ae_npy_load(&t, ae_test_path("f.npy"), 3.0f), AE_OK);
        check_tensor(t, cases[c].rank, cases[c].dims);
        assert_memory_equal(ae_tensor_data(t), src, n * sizeof(float));
        ae_tensor_free(t);
        free(big);
    }
}

static void rows_and_caps(void **state)
{
    ae_tensor *t = NULL;
    size_t dims[3] = {2, 2, 3};
    float buf[24];
    (void)state;
    fill_data();
    /* 8 rows of 2x3 */
    write_npy(ae_test_path("r.npy"), 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (8, 2, 3), }",
              64, g_u8, 48);
    assert_int_equal(ae_npy_load_rows(&t, ae_test_path("r.npy"), 2, 1.0f), AE_OK);
    check_tensor(t, 3, dims);
    for (size_t i = 0; i < 12; i++) assert_true(ae_tensor_data(t)[i] == g_u8[i]);
    ae_tensor_free(t);
    assert_int_equal(ae_npy_load_rows(&t, ae_test_path("r.npy"), 100, 1.0f), AE_OK);
    assert_int_equal(ae_tensor_dim(t, 0), 8);
    ae_tensor_free(t);
    assert_int_equal(ae_npy_load_rows(&t, ae_test_path("r.npy"), 0, 1.0f), AE_OK);
    assert_int_equal(ae_tensor_dim(t, 0), 8);
    ae_tensor_free(t);

    assert_int_equal(ae_npy_read_rows(ae_test_path("r.npy"), 3, 4, 1.0f, buf, 24), AE_OK);
    for (size_t i = 0; i < 24; i++) assert_true(buf[i] == g_u8[18 + i]);
    assert_int_equal(ae_npy_read_rows(ae_test_path("r.npy"), 5, 4, 1.0f, buf, 24), AE_ERR_RANGE);
    assert_int_equal(ae_npy_read_rows(ae_test_path("r.npy"), 0, 5, 1.0f, buf, 24), AE_ERR_RANGE);
    assert_true(strlen(ae_last_error()) > 0);
    assert_int_equal(ae_npy_read_rows(ae_test_path("r.npy"), 8, 0, 1.0f, buf, 24), AE_OK);
    assert_int_equal(ae_npy_load(&t, ae_test_path("r.npy"), NAN), AE_ERR_RANGE);
    assert_null(t);
    assert_int_equal(ae_npy_load(NULL, ae_test_path("r.npy"), 1.0f), AE_ERR_INVALID_ARG);
    assert_int_equal(ae_npy_load(&t, NULL, 1.0f), AE_ERR_INVALID_ARG);
    assert_int_equal(ae_npy_load(&t, ae_test_path("does-not-exist.npy"), 1.0f), AE_ERR_IO);
    assert_non_null(strstr(ae_last_error(), "does-not-exist.npy"));
}

static void save_roundtrip(void **state)
{
    size_t dims[4] = {3, 5, 7, 2};
    (void)state;
    fill_data();
    for (int rank = 1; rank <= 4; rank++) {
        ae_tensor *t = NULL;
        size_t n = 1;
        unsigned char head[128];
        FILE *f;
        size_t hl;
        for (int i = 0; i < rank; i++) n *= dims[i];
        assert_int_equal(ae_npy_save_f32(ae_test_path("s.npy"), g_f32, rank, dims), AE_OK);
        /* header: v1.0, aligned to 64, ends in '\n' */
        f = fopen(ae_test_path("s.npy"), "rb");
        assert_non_null(f);
        assert_int_equal(fread(head, 1, sizeof head, f), sizeof head);
        fclose(f);
        assert_memory_equal(head, "\x93NUMPY\x01\x00", 8);
        hl = head[8] | (size_t)head[9] << 8;
        assert_int_equal((10 + hl) % 64, 0);
        assert_int_equal(head[10 + hl - 1], '\n');
        {   /* the header as a NUL-terminated string */
            char text[sizeof head + 1];
            memcpy(text, head, sizeof head);
            text[sizeof head] = '\0';
            assert_non_null(strstr(text + 10, rank == 1 ? "'shape': (3,)" : "'shape': (3, 5"));
        }
        assert_int_equal(ae_npy_load(&t, ae_test_path("s.npy"), 1.0f), AE_OK);
        check_tensor(t, rank, dims);
        assert_memory_equal(ae_tensor_data(t), g_f32, n * sizeof(float));
        ae_tensor_free(t);
    }
    assert_int_equal(ae_npy_save_f32(ae_test_path("s.npy"), g_f32, 0, dims), AE_ERR_INVALID_ARG);
    assert_int_equal(ae_npy_save_f32(ae_test_path("s.npy"), g_f32, 5, dims), AE_ERR_INVALID_ARG);
    assert_int_equal(ae_npy_save_f32(NULL, g_f32, 1, dims), AE_ERR_INVALID_ARG);
    {
        size_t zero[2] = {3, 0};
        assert_int_equal(ae_npy_save_f32(ae_test_path("s.npy"), g_f32, 2, zero), AE_ERR_INVALID_ARG);
    }
    /* unwritable target: error, and the temp file does not stay behind */
    assert_int_equal(ae_npy_save_f32(ae_test_path("no-such-dir/s.npy"), g_f32, 1, dims), AE_ERR_IO);
    assert_true(strlen(ae_last_error()) > 0);
}

/* ---- malformed files ------------------------------------------------------------ */
static void expect_format(const char *name, const char *needle)
{
    ae_tensor *t = (ae_tensor *)(void *)&t; /* must be reset to NULL */
    ae_status st = ae_npy_load(&t, ae_test_path(name), AE_NPY_U8_UNIT);
    if (st != AE_ERR_FORMAT || !strstr(ae_last_error(), needle))
        print_error("%s: status %d, message '%s', expected '%s'\n", name, st, ae_last_error(),
                    needle);
    assert_int_equal(st, AE_ERR_FORMAT);
    assert_null(t);
    assert_non_null(strstr(ae_last_error(), name)); /* the message names the file */
    assert_non_null(strstr(ae_last_error(), needle));
    assert_int_equal(ae_npy_info(NULL, NULL, NULL, ae_test_path(name)),
                     AE_ERR_FORMAT);
    assert_int_equal(ae_test_alloc_live_blocks(), 0);
}

static void bad_preamble(void **state)
{
    unsigned char buf[128];
    (void)state;
    fill_data();
    write_bytes(ae_test_path("empty.npy"), "", 0);
    expect_format("empty.npy", "empty");
    write_bytes(ae_test_path("short.npy"), "\x93NUMPY\x01", 7);
    expect_format("short.npy", "too short");
    write_npy(ae_test_path("magic.npy"), 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }",
              64, g_u8, 3);
    assert_int_equal(ae_test_patch_file(ae_test_path("magic.npy"), 0, "X", 1), 0);
    expect_format("magic.npy", "bad magic");
    write_bytes(ae_test_path("png.npy"), "\x89PNG\r\n\x1a\n\0\0\0\0", 12);
    expect_format("png.npy", "bad magic");

    write_npy(ae_test_path("ver4.npy"), 4, "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }",
              64, g_u8, 3);
    expect_format("ver4.npy", "version 4.0");
    write_npy(ae_test_path("ver11.npy"), 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }",
              64, g_u8, 3);
    assert_int_equal(ae_test_patch_file(ae_test_path("ver11.npy"), 7, "\1", 1), 0);
    expect_format("ver11.npy", "version 1.1");

    /* header length 0, larger than the file, larger than allowed */
    memcpy(buf, "\x93NUMPY\x01\x00\x00\x00\n\n", 12);
    write_bytes(ae_test_path("hlen0.npy"), buf, 12);
    expect_format("hlen0.npy", "zero");
    memcpy(buf, "\x93NUMPY\x01\x00\x70\x00{'descr'", 17);
    write_bytes(ae_test_path("trunchdr.npy"), buf, 17);
    expect_format("trunchdr.npy", "truncated header");
    memcpy(buf, "\x93NUMPY\x02\x00\x00\x00\x10\x00{'descr'", 19);
    write_bytes(ae_test_path("hugehdr.npy"), buf, 19);
    expect_format("hugehdr.npy", "larger than");
    memcpy(buf, "\x93NUMPY\x02\x00\x10\x00", 10); /* v2 needs 4 length bytes */
    write_bytes(ae_test_path("v2short.npy"), buf, 10);
    expect_format("v2short.npy", "truncated header length");
}

static void bad_data(void **state)
{
    (void)state;
    fill_data();
    write_npy(ae_test_path("truncdata.npy"), 1,
              "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 4), }", 64, g_u8, 11);
    expect_format("truncdata.npy", "truncated data");
    write_npy(ae_test_path("nodata.npy"), 1,
              "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 4), }", 64, g_u8, 0);
    expect_format("nodata.npy", "truncated data");
    write_npy(ae_test_path("extra.npy"), 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 4), }",
              64, g_u8, 13);
    expect_format("extra.npy", "shape/length mismatch");
    write_npy(ae_test_path("f4short.npy"), 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
              64, g_f32, 11);
    expect_format("f4short.npy", "truncated data");
    /* overflow: element count, byte count, a number wider than size_t */
    write_npy(ae_test_path("ovf1.npy"), 1,
              "{'descr': '|u1', 'fortran_order': False, 'shape': (4294967296, 4294967296, 2), }",
              64, g_u8, 16);
    expect_format("ovf1.npy", "too large");
    write_npy(ae_test_path("ovf2.npy"), 1,
              "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904,), }", 64,
              g_u8, 16);
    expect_format("ovf2.npy", "too large");
    write_npy(ae_test_path("ovf3.npy"), 1,
              "{'descr': '|u1', 'fortran_order': False, 'shape': (184467440737095516160,), }", 64,
              g_u8, 16);
    expect_format("ovf3.npy", "too large");
    /* huge but not overflowing: refused by the length check, nothing allocated */
    write_npy(ae_test_path("huge.npy"), 1,
              "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000, 784), }", 64, g_u8,
              16);
    expect_format("huge.npy", "truncated data");
    write_npy(ae_test_path("zero.npy"), 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (0, 784), }",
              64, g_u8, 0);
    expect_format("zero.npy", "empty arrays");
    write_npy(ae_test_path("scalar.npy"), 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (), }",
              64, g_u8, 1);
    expect_format("scalar.npy", "0-d");
    write_npy(ae_test_path("rank5.npy"), 1,
              "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 1, 1, 1, 2), }", 64, g_u8, 2);
    expect_format("rank5.npy", "more than 4 dimensions");
}

static void bad_dtype_order(void **state)
{
    (void)state;
    fill_data();
    write_npy(ae_test_path("f8.npy"), 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }",
              64, g_f32, 16);
    expect_format("f8.npy", "dtype '<f8' is not supported");
    write_npy(ae_test_path("bigend.npy"), 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }",
              64, g_f32, 8);
    expect_format("bigend.npy", "big-endian");
    write_npy(ae_test_path("i4.npy"), 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }",
              64, g_f32, 8);
    expect_format("i4.npy", "dtype '<i4'");
    write_npy(ae_test_path("struct.npy"), 1,
              "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 64, g_f32, 8);
    expect_format("struct.npy", "structured");
    write_npy(ae_test_path("fortran.npy"), 1, "{'descr': '|u1', 'fortran_order': True, 'shape': (3, 4), }",
              64, g_u8, 12);
    expect_format("fortran.npy", "fortran_order arrays are not supported");
}

static void bad_dict(void **state)
{
    static const struct {
        const char *dict;
        const char *needle;
    } cases[] = {
        {"", "not a dict"},
        {"[1, 2, 3]", "not a dict"},
        {"{'descr': '|u1', 'fortran_order': False}", "no 'shape'"},
        {"{'descr': '|u1', 'shape': (12,)}", "no 'fortran_order'"},
        {"{'fortran_order': False, 'shape': (12,)}", "no 'descr'"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (12,), 'extra': 1}", "unexpected key"},
        {"{'descr': '|u1', 'descr': '|u1', 'fortran_order': False, 'shape': (12,)}", "duplicate"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (12)}", "1-tuple"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': [12]}", "must be a tuple"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (12,,)}", "expected a dimension"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (-12,)}", "expected a dimension"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (012,)}", "leading zero"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (12 3)}", "expected ',' or ')'"},
        {"{'descr': '|u1', 'fortran_order': 0, 'shape': (12,)}", "True or False"},
        {"{'descr': '|u1', 'fortran_order': Falsey, 'shape': (12,)}", "True or False"},
        {"{'descr': '|u1, 'fortran_order': False, 'shape': (12,)}", "expected ',' or '}'"},
        {"{'descr' '|u1', 'fortran_order': False, 'shape': (12,)}", "expected ':'"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (12,)", "expected ',' or '}'"},
        {"{'descr': '|u1' 'fortran_order': False, 'shape': (12,)}", "expected ',' or '}'"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (12,)} x", "after the dict"},
        {"{descr: '|u1', 'fortran_order': False, 'shape': (12,)}", "quoted key"},
        {"{'descr': '|u1\\x', 'fortran_order': False, 'shape': (12,)}", "unexpected character"},
        {"{'descr': '|u1', 'fortran_order': False,\n 'shape': (12,)}", "newline"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (12,)}}", "after the dict"},
    };
    (void)state;
    fill_data();
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char name[32];
        snprintf(name, sizeof name, "dict%02zu.npy", c);
        write_npy(ae_test_path(name), 1, cases[c].dict, 64, g_u8, 12);
        expect_format(name, cases[c].needle);
    }
    /* no newline at the end; a NUL inside; an unterminated string */
    {
        unsigned char buf[80];
        const char *d = "{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }";
        size_t dl = strlen(d);
        memcpy(buf, "\x93NUMPY\x01\x00", 8);
        buf[8] = (unsigned char)dl;
        buf[9] = 0;
        memcpy(buf + 10, d, dl);
        buf[10 + dl] = 1;
        buf[11 + dl] = 2;
        write_bytes(ae_test_path("nonl.npy"), buf, 12 + dl);
        expect_format("nonl.npy", "newline");
        buf[8] = (unsigned char)(dl + 1);
        buf[10 + dl] = '\n';
        buf[11 + dl] = 1;
        buf[12 + dl] = 2;
        buf[15] = '\0';
        write_bytes(ae_test_path("nul.npy"), buf, 13 + dl);
        expect_format("nul.npy", "NUL");
        memcpy(buf + 10, "{'descr    \n", 12);
        buf[8] = 12;
        buf[22] = 1;
        buf[23] = 2;
        write_bytes(ae_test_path("unterm.npy"), buf, 24);
        expect_format("unterm.npy", "unterminated");
    }
}

/* Every allocation of a load failing in turn: AE_ERR_NOMEM, nothing leaked. */
static void alloc_failures(void **state)
{
    ae_status st;
    long k;
    (void)state;
    fill_data();
    write_npy(ae_test_path("af.npy"), 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 4), }",
              64, g_u8, 12);
    for (k = 1;; k++) {
        ae_tensor *t = NULL;
        ae_test_alloc_fail_at(k);
        st = ae_npy_load(&t, ae_test_path("af.npy"), 1.0f);
        ae_test_alloc_fail_at(0);
        if (st == AE_OK) {
            ae_tensor_free(t);
            break;
        }
        assert_int_equal(st, AE_ERR_NOMEM);
        assert_null(t);
        assert_int_equal(ae_test_alloc_live_blocks(), 0);
    }
    assert_true(k - 1 >= 2); /* failure points: header, tensor, data */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(valid_u8_2d_v1, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(valid_u8_variants, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(valid_f32, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(rows_and_caps, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(save_roundtrip, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(bad_preamble, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(bad_data, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(bad_dtype_order, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(bad_dict, ae_test_alloc_teardown),
        cmocka_unit_test_teardown(alloc_failures, ae_test_alloc_teardown),
    };
    return cmocka_run_group_tests(tests, ae_test_group_setup, ae_test_group_teardown);
}
