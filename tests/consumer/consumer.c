/*
 * Installed-consumer test program (C). Built outside the libautoenc build,
 * against an installed prefix only: by tests/consumer/consumer.sh through
 * pkg-config (shared and static) and by tests/consumer/cmake through
 * find_package(autoenc) (static target). It must see the same library the
 * headers describe and run a real model end to end.
 */
#include <autoenc/autoenc.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#define N_SAMPLES 3
#define PIXELS 784

static int failures;

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "FAIL: %s (last error: %s)\n", what, ae_last_error());
        failures++;
    }
}

int main(int argc, char **argv)
{
    static float x[N_SAMPLES * PIXELS];
    static float y[N_SAMPLES * PIXELS];
    const char *label = argc > 1 ? argv[1] : "c";
    ae_model *m = NULL;
    ae_status st;
    size_t i;

    check(strcmp(ae_version(), AE_VERSION_STRING) == 0, "ae_version() == AE_VERSION_STRING");
    check(ae_version_number() == AE_VERSION_NUMBER, "ae_version_number() == AE_VERSION_NUMBER");

    st = ae_preset_build(&m, AE_PRESET_SIMPLE, 42);
    check(st == AE_OK && m != NULL, "ae_preset_build");
    if (st != AE_OK || m == NULL) {
        fprintf(stderr, "%s consumer: cannot build the model (%s)\n", label, ae_status_string(st));
        return 1;
    }
    check(ae_model_param_count(m) == 50992, "ae_model_param_count == 50992");
    check(ae_model_input_size(m) == PIXELS, "ae_model_input_size == 784");
    check(ae_model_output_size(m) == PIXELS, "ae_model_output_size == 784");

    /* A deterministic, drawing-like input in [0, 1]. */
    for (i = 0; i < N_SAMPLES * PIXELS; i++)
        x[i] = (float)((i * 37u) % 101u) / 100.0f;
    for (i = 0; i < N_SAMPLES * PIXELS; i++)
        y[i] = -1.0f;

    st = ae_model_predict(m, x, N_SAMPLES, y, N_SAMPLES * PIXELS);
    check(st == AE_OK, "ae_model_predict");
    if (st == AE_OK) {
        size_t bad = 0;
        for (i = 0; i < N_SAMPLES * PIXELS; i++)
            if (!(isfinite(y[i]) && y[i] > 0.0f && y[i] < 1.0f))
                bad++;
        check(bad == 0, "every output in (0, 1) (sigmoid)");
    }
    /* A buffer one sample short must be refused, not overrun. */
    st = ae_model_predict(m, x, N_SAMPLES, y, (N_SAMPLES - 1) * PIXELS);
    check(ae_is_error(st), "ae_model_predict refuses a short output buffer");

    ae_model_free(m);
    ae_model_free(NULL);

    if (failures) {
        fprintf(stderr, "%s consumer: %d failure(s)\n", label, failures);
        return 1;
    }
    printf("%s consumer: libautoenc %s, simple model %u parameters, predict ok\n", label,
           ae_version(), 50992u);
    return 0;
}
