/* What panbench's C extensions share (_native.c, _boundary.c, _rle.c, _resample.c): the table from segment id to
 * its index in segments_info order, and the AVX2 switch.
 *
 * pb_idmap: open addressing, uint32 id -> index 1..n; 0 is VOID (never stored, always index 0); an id in
 * no segment gives -1.  At least 4 slots per key, so a probe sequence stays short.
 *
 * AVX2: a loop with an AVX2 body runs it where the CPU has AVX2 (PB_AVX2_INIT() at module init sets
 * pb_have_avx2); `use_avx2(flag)` (pb_use_avx2) lets the tests switch it off and back on: both paths give
 * the same numbers.  PB_AVX2 is 1 where the compiler can build AVX2 bodies (x86-64, GCC or Clang).
 */
#ifndef PANBENCH_COMMON_H
#define PANBENCH_COMMON_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct {
    uint32_t *keys;
    int32_t *vals;
    uint32_t mask;
} pb_idmap;

static inline uint32_t pb_hash32(uint32_t x) { return (x * 2654435761u) >> 7; }

#ifdef __GNUC__
#define PB_MAYBE_UNUSED __attribute__((unused)) /* a file that includes this header for the AVX2 switch alone */
#else
#define PB_MAYBE_UNUSED
#endif

/* keys: n int64 segment ids; returns -1 when out of memory (pb_idmap_free frees what was taken) */
PB_MAYBE_UNUSED static int pb_idmap_init(pb_idmap *m, const int64_t *keys, Py_ssize_t n) {
    uint32_t size = 16;
    while (size < 4 * (uint64_t)n) size <<= 1;
    m->keys = calloc(size, sizeof(uint32_t));
    m->vals = calloc(size, sizeof(int32_t));
    m->mask = size - 1;
    if (!m->keys || !m->vals) return -1;
    for (Py_ssize_t k = 0; k < n; k++) {
        uint32_t key = (uint32_t)keys[k], s = pb_hash32(key) & m->mask;
        if (key == 0) continue;
        while (m->keys[s] && m->keys[s] != key) s = (s + 1) & m->mask;
        m->keys[s] = key;
        m->vals[s] = (int32_t)(k + 1);
    }
    return 0;
}

static inline int32_t pb_idmap_get(const pb_idmap *m, uint32_t key) {
    if (key == 0) return 0;
    uint32_t s = pb_hash32(key) & m->mask;
    while (m->keys[s]) {
        if (m->keys[s] == key) return m->vals[s];
        s = (s + 1) & m->mask;
    }
    return -1;
}

PB_MAYBE_UNUSED static void pb_idmap_free(pb_idmap *m) {
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
}

static int pb_have_avx2, pb_cpu_avx2; /* in use; the CPU has it */

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define PB_AVX2 1
#define PB_AVX2_INIT() (pb_have_avx2 = pb_cpu_avx2 = __builtin_cpu_supports("avx2"))
#else
#define PB_AVX2 0
#define PB_AVX2_INIT() ((void)0)
#endif

/* use_avx2(flag) -> bool: switch the AVX2 loops off (0) or back on where the CPU has AVX2 (1); returns
 * whether they are in use */
PB_MAYBE_UNUSED /* a file that includes this header for the id table alone leaves it out */
static PyObject *pb_use_avx2(PyObject *self, PyObject *args) {
    int flag;
    (void)self;
    if (!PyArg_ParseTuple(args, "p", &flag)) return NULL;
    pb_have_avx2 = flag && pb_cpu_avx2;
    return PyBool_FromLong(pb_have_avx2);
}

#endif
