/*
 * Compiler and instruction-set facts, private to the library: function
 * multi-versioning, inlining, sanitizer detection, branch and prefetch hints,
 * and the one thread limit. Every source file that needs one of these gets
 * it from here, so there is a single definition of each.
 */
#ifndef AUTOENC_COMPILER_H
#define AUTOENC_COMPILER_H

/* ThreadSanitizer: GCC defines __SANITIZE_THREAD__, clang answers
 * __has_feature(thread_sanitizer). */
#if defined(__SANITIZE_THREAD__)
#define AE__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define AE__TSAN 1
#endif
#endif

/* Hot functions are compiled three times, for x86-64-v4 (AVX-512), x86-64-v3
 * (AVX2 + FMA) and baseline x86-64, and the dynamic loader picks the best for
 * the CPU (target_clones, resolved through an ifunc), so the library needs no
 * -march flag to be fast. The static inline helpers they call are inlined
 * into every clone.
 * Not under ThreadSanitizer: its runtime is not ready when the ifunc
 * resolvers run at load time, and the instrumented resolvers crash.
 * -DAE_NO_TARGET_CLONES turns it off too (one code path, e.g. the fuzz build). */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && !defined(AE__TSAN) && \
    !defined(AE_NO_TARGET_CLONES)
#define AE__HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define AE__HOT
#endif

/* Whether the running CPU takes the x86-64-v4 clones (the AVX-512 subsets that
 * level requires), for kernels whose register tiling depends on the vector
 * register count and not only on the width (dense.c): one runtime answer
 * inside every clone. Without clones the code is baseline x86-64 and the
 * narrower tiling is the better one. */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && !defined(AE__TSAN) && \
    !defined(AE_NO_TARGET_CLONES)
#define AE__CPU_HAS_AVX512()                                                              \
    (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&           \
     __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&          \
     __builtin_cpu_supports("avx512vl"))
#else
#define AE__CPU_HAS_AVX512() 0
#endif

/* Vector helpers of the hot loops are always inlined: at -O0 an out-of-line
 * helper would be compiled for baseline x86-64 and take its vector arguments
 * with another ABI than its AVX-512 caller passes them. */
#if defined(__GNUC__)
#define AE__ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define AE__ALWAYS_INLINE static inline
#endif

#if defined(__GNUC__)
#define AE__PREFETCH(p) __builtin_prefetch((p), 0, 3)
#define AE__LIKELY(x) __builtin_expect(!!(x), 1)
#define AE__UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define AE__PREFETCH(p) ((void)0)
#define AE__LIKELY(x) (x)
#define AE__UNLIKELY(x) (x)
#endif

/* The CPU's spin-wait hint (x86 pause), for loops that poll a flag another
 * core will change: the thread pool's waits and the HNSW build's node locks. */
static inline void ae__cpu_relax(void)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_ia32_pause();
#endif
}

/* Upper bound of every thread count: the one-per-core default, the
 * set_threads ranges, and the per-thread arrays training keeps on the stack. */
#define AE__MAX_THREADS 64

#endif /* AUTOENC_COMPILER_H */
