/*
 * Exact resume after a crash: a training run that writes checkpoints (at
 * epoch ends and every AE_TRAIN_CHECKPOINT_STEPS steps) is killed with
 * SIGKILL at a random moment; training resumed from its last checkpoint (or
 * from scratch when none was written yet) ends with weights bit-identical to
 * the same run never interrupted (same seed and thread count).
 *
 * Each trial forks a child that trains from the same initial model with a
 * checkpoint path and exits; the parent kills it after a random delay of up
 * to the run's measured duration, loads the checkpoint, runs the remaining
 * epochs (AE_TRAIN_EPOCHS minus the completed ones: an unfinished epoch
 * counts as one) and compares every weight with the reference. The trials
 * must include kills that landed mid-epoch (a checkpoint with step > 0).
 * 8 trials (AE_TEST_SMALL=1: 2, on a smaller run) with the row shuffle,
 * then half as many (at least 2) with the block shuffle
 * (AE_TRAIN_SHUFFLE_BLOCK), whose checkpoints carry the block record.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "train_state.h"
#include "test_support.h"

static int g_trials = 8, g_small;
static const int EPOCHS = 3;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static ae_model *model(size_t width)
{
    ae_builder *b;
    ae_model *m;
    size_t in[1];
    in[0] = width;
    assert_int_equal(ae_builder_create(&b, 1, in), AE_OK);
    assert_int_equal(ae_builder_dense(b, 128, AE_ACT_RELU), AE_OK);
    assert_int_equal(ae_builder_dense(b, 16, AE_ACT_RELU), AE_OK);
    assert_int_equal(ae_builder_mark_code(b), AE_OK);
    assert_int_equal(ae_builder_dense(b, 128, AE_ACT_RELU), AE_OK);
    assert_int_equal(ae_builder_dense(b, width, AE_ACT_SIGMOID), AE_OK);
    assert_int_equal(ae_builder_build(&m, b, 11), AE_OK);
    ae_builder_free(b);
    return m;
}

static ae_train_config *config(int epochs, int64_t shuffle_block)
{
    ae_train_config *c;
    assert_int_equal(ae_train_config_create(&c), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_EPOCHS, epochs), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_BATCH_SIZE, 32), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_SEED, 99), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_THREADS, 2), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_PATIENCE, 10), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_CHECKPOINT_STEPS, 7), AE_OK);
    assert_int_equal(ae_train_config_set_double(c, AE_TRAIN_VALIDATION_SPLIT, 0.1), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_SHUFFLE_BLOCK, shuffle_block), AE_OK);
    assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_SHUFFLE_WINDOW, 4), AE_OK);
    return c;
}

static void kill_and_resume(int64_t shuffle_block, int trials)
{
    const size_t n = g_small ? 400 : 4000, width = 196;
    float *x = ae_test_rows(n, width, 5);
    ae_model *ref = model(width);
    ae_train_config *c = config(EPOCHS, shuffle_block);
    ae_train_state *s;
    const char *ckpt = ae_test_path("run.aeckpt");
    unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL);
    double t0, run_secs;
    int mid_epoch = 0, from_scratch = 0, at_epoch_end = 0;
    /* the reference, timed: the kills land anywhere in a run like it */
    assert_int_equal(ae_train_state_create(&s), AE_OK);
    assert_int_equal(ae_train_state_set_checkpoint(s, ae_test_path("ref.aeckpt")), AE_OK);
    t0 = now();
    assert_int_equal(ae_train_fit_state(ref, c, s, x, NULL, n, NULL), AE_OK);
    run_secs = now() - t0;
    ae_train_state_free(s);

    /* up to 4 extra trials when none landed mid-epoch (a loaded machine
     * can stretch a child's run far beyond the measured one) */
    for (int t = 0; t < trials || (mid_epoch == 0 && t < trials + 4); t++) {
        ae_model *m = NULL;
        ae_train_state *rs = NULL;
        pid_t pid;
        int status, epochs_left;
        long delay_us;
        unlink(ckpt);
        fflush(NULL);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            /* a child that finishes frees what it made: under valgrind its
             * leak check decides its exit status */
            ae_model *cm = model(width);
            ae_train_state *cs;
            ae_status st;
            if (ae_train_state_create(&cs) != AE_OK || ae_train_state_set_checkpoint(cs, ckpt) != AE_OK)
                _exit(3);
            st = ae_train_fit_state(cm, c, cs, x, NULL, n, NULL);
            ae_train_state_free(cs);
            ae_model_free(cm);
            ae_model_free(ref);
            ae_train_config_free(c);
            free(x);
            _exit(st == AE_OK ? 0 : 4);
        }
        /* spread over the first 90% of a run: later kills would mostly find
         * the run finished */
        delay_us = (long)(rand_r(&seed) % 1000) * (long)(run_secs * 0.9e6) / 1000;
        if (t == 0 || t >= trials) delay_us = (long)(run_secs * 0.5e6); /* mid-run kills */
        if (delay_us > 0) {
            struct timespec ts = {delay_us / 1000000, (delay_us % 1000000) * 1000};
            nanosleep(&ts, NULL);
        }
        kill(pid, SIGKILL);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFSIGNALED(status) && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
            fail_msg("trial %d: the training child ended with status %d", t, status);
        if (ae_test_file_size(ckpt) > 0) {
            assert_int_equal(ae_train_state_load(&rs, &m, ckpt), AE_OK);
            if (ae_train_state_step(rs) > 0) mid_epoch++;
            else at_epoch_end++;
        } else {
            m = model(width);
            assert_int_equal(ae_train_state_create(&rs), AE_OK);
            from_scratch++;
        }
        epochs_left = EPOCHS - (int)ae_train_state_epoch(rs);
        if (epochs_left > 0) {
            assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_EPOCHS, epochs_left), AE_OK);
            assert_int_equal(ae_train_fit_state(m, c, rs, x, NULL, n, NULL), AE_OK);
            assert_int_equal(ae_train_config_set_int(c, AE_TRAIN_EPOCHS, EPOCHS), AE_OK);
        }
        assert_int_equal(ae_train_state_epoch(rs), EPOCHS);
        if (memcmp(m->params, ref->params, m->n_params * sizeof(float)) != 0)
            fail_msg("trial %d: resumed weights differ from the uninterrupted run", t);
        ae_train_state_free(rs);
        ae_model_free(m);
        /* a killed writer may leave its temporary file: remove it as an
         * application would (docs/reliability.md) */
        {
            char names[8][256];
            int k = ae_test_find_names(ae_test_tmpdir(), ".tmp-", names, 8);
            for (int i = 0; i < k && i < 8; i++) unlink(ae_test_path("%s", names[i]));
        }
    }
    print_message("kill and resume (shuffle block %d): %d trials, %d resumed mid-epoch, %d at "
                  "an epoch end, %d from scratch; all bit-identical (run %.2f s)\n",
                  (int)shuffle_block, mid_epoch + at_epoch_end + from_scratch, mid_epoch,
                  at_epoch_end, from_scratch, run_secs);
    assert_true(mid_epoch > 0);
    ae_model_free(ref);
    ae_train_config_free(c);
    free(x);
}

static void test_kill_and_resume(void **unused)
{
    (void)unused;
    kill_and_resume(0, g_trials);
}

static void test_kill_and_resume_block_shuffle(void **unused)
{
    (void)unused;
    kill_and_resume(50, g_trials / 2 > 2 ? g_trials / 2 : 2);
}

static int setup(void **state)
{
    const char *v = getenv("AE_TEST_SMALL");
    (void)state;
    g_small = v && *v && strcmp(v, "0") != 0;
    if (g_small) g_trials = 2;
    if (getenv("AE_CRASH_TRIALS")) g_trials = atoi(getenv("AE_CRASH_TRIALS"));
    return ae_test_tmpdir_create("ae_crash_resume_", AE_TEST_CWD) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return ae_test_tmpdir_remove();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_and_resume),
        cmocka_unit_test(test_kill_and_resume_block_shuffle),
    };
    return cmocka_run_group_tests_name("crash_resume", tests, setup, teardown);
}
