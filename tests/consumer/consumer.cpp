// Installed-consumer test program (C++). Built by tests/consumer/cmake
// through find_package(autoenc) against the shared library autoenc::autoenc:
// the public headers must work from C++ (extern "C", no C-only constructs).
#include <autoenc/autoenc.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

namespace {

int failures = 0;

void check(bool ok, const char *what)
{
    if (!ok) {
        std::fprintf(stderr, "FAIL: %s (last error: %s)\n", what, ae_last_error());
        ++failures;
    }
}

} // namespace

int main()
{
    const std::size_t n = 3, pixels = 784;

    check(std::strcmp(ae_version(), AE_VERSION_STRING) == 0, "ae_version() == AE_VERSION_STRING");
    check(ae_version_number() == AE_VERSION_NUMBER, "ae_version_number() == AE_VERSION_NUMBER");

    ae_model *m = nullptr;
    ae_status st = ae_preset_build(&m, AE_PRESET_SIMPLE, 42);
    check(st == AE_OK && m != nullptr, "ae_preset_build");
    if (st != AE_OK || m == nullptr) {
        std::fprintf(stderr, "c++ consumer: cannot build the model (%s)\n", ae_status_string(st));
        return 1;
    }
    check(ae_model_param_count(m) == 50992, "ae_model_param_count == 50992");
    check(ae_model_output_size(m) == pixels, "ae_model_output_size == 784");

    std::vector<float> x(n * pixels), y(n * pixels, -1.0f);
    for (std::size_t i = 0; i < x.size(); ++i)
        x[i] = static_cast<float>((i * 37u) % 101u) / 100.0f;

    st = ae_model_predict(m, x.data(), n, y.data(), y.size());
    check(st == AE_OK, "ae_model_predict");
    if (st == AE_OK) {
        std::size_t bad = 0;
        for (float v : y)
            if (!(std::isfinite(v) && v > 0.0f && v < 1.0f))
                ++bad;
        check(bad == 0, "every output in (0, 1) (sigmoid)");
    }

    ae_model_free(m);

    if (failures) {
        std::fprintf(stderr, "c++ consumer: %d failure(s)\n", failures);
        return 1;
    }
    std::printf("c++ consumer: libautoenc %s, simple model 50992 parameters, predict ok\n",
                ae_version());
    return 0;
}
