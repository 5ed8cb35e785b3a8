/* Status strings, error messages, the allocator hook, version, RNG, CRC. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include "internal.h"

/* ---- version ------------------------------------------------------------- */
const char *ae_version(void) { return AE_VERSION_STRING; }
unsigned ae_version_number(void) { return AE_VERSION_NUMBER; }

/* ---- status strings ------------------------------------------------------ */
const char *ae_status_string(ae_status s)
{
    switch (s) {
    case AE_OK: return "ok";
    case AE_STOPPED: return "stopped on request";
    case AE_ERR_INVALID_ARG: return "invalid argument";
    case AE_ERR_NOMEM: return "out of memory";
    case AE_ERR_SHAPE: return "shape mismatch";
    case AE_ERR_RANGE: return "parameter out of range";
    case AE_ERR_IO: return "input/output error";
    case AE_ERR_FORMAT: return "malformed or truncated file";
    case AE_ERR_VERSION: return "unsupported file format version";
    case AE_ERR_CHECKSUM: return "checksum mismatch";
    case AE_ERR_NUMERIC: return "NaN or infinity encountered";
    case AE_ERR_STATE: return "call not allowed in this state";
    case AE_ERR_UNSUPPORTED: return "unsupported";
    case AE_ERR_INTERNAL: return "internal error";
    default: return "unknown status";
    }
}

int ae_is_error(ae_status s) { return s < 0; }

/* ---- error messages ------------------------------------------------------ */
static _Thread_local char tl_msg[AE__MSG_CAP];
static _Thread_local const char *tl_api; /* public function running on this thread */
static _Thread_local unsigned tl_nest;   /* > 0 inside AE__NESTED */
static _Thread_local size_t tl_head;     /* length of the "<function>: " prefix */

const char *ae_last_error(void) { return tl_msg; }

const char *ae__last_error_text(void) { return tl_msg + tl_head; }

void ae__api_enter(const char *name)
{
    if (tl_nest == 0) tl_api = name;
}

void ae__nest_push(void) { tl_nest++; }

ae_status ae__nest_pop(ae_status status)
{
    tl_nest--;
    return status;
}

ae_status ae__fail(char *handle_msg, ae_status status, const char *fmt, ...)
{
    /* format into a local buffer first: an argument may be ae_last_error()
     * itself (a caller wrapping a callee's message) */
    char msg[AE__MSG_CAP];
    int head = snprintf(msg, sizeof msg, "%s: ", tl_api ? tl_api : "libautoenc");
    va_list ap;
    if (head < 0 || (size_t)head >= sizeof msg) head = 0;
    va_start(ap, fmt);
    vsnprintf(msg + head, sizeof msg - (size_t)head, fmt, ap);
    va_end(ap);
    memcpy(tl_msg, msg, sizeof msg);
    tl_head = (size_t)head;
    if (handle_msg) memcpy(handle_msg, msg, sizeof msg);
    return status;
}

ae_status ae_set_error(ae_status status, const char *message)
{
    const char *colon;
    size_t len;
    if (!message) message = "";
    len = strlen(message);
    if (len >= AE__MSG_CAP) len = AE__MSG_CAP - 1;
    memcpy(tl_msg, message, len);
    tl_msg[len] = '\0';
    /* ae__last_error_text() is the text after "<function>: " */
    colon = strstr(tl_msg, ": ");
    tl_head = colon ? (size_t)(colon - tl_msg) + 2 : 0;
    return status;
}

void ae__keep_msg(char *handle_msg)
{
    if (handle_msg) memcpy(handle_msg, tl_msg, AE__MSG_CAP);
}

/* ---- allocator ------------------------------------------------------------
 * The hook may only change while nothing allocated through the old one is
 * alive; the live count is what makes that checkable. */
static ae_alloc_fn g_alloc_fn;      /* NULL: libc */
static void *g_alloc_ud;
static atomic_size_t g_live_blocks;

ae_status ae_set_allocator(ae_alloc_fn fn, void *ud)
{
    AE__ENTER();
    if (atomic_load(&g_live_blocks) != 0)
        return ae__fail(NULL, AE_ERR_STATE,
                        "%zu library allocations are still alive",
                        (size_t)atomic_load(&g_live_blocks));
    g_alloc_fn = fn;
    g_alloc_ud = fn ? ud : NULL;
    return AE_OK;
}

void ae_get_allocator(ae_alloc_fn *fn, void **ud)
{
    if (fn) *fn = g_alloc_fn;
    if (ud) *ud = g_alloc_ud;
}

void *ae__malloc(size_t n)
{
    void *p;
    if (n == 0) return NULL;
    p = g_alloc_fn ? g_alloc_fn(g_alloc_ud, NULL, 0, n) : malloc(n);
    if (p) atomic_fetch_add(&g_live_blocks, 1);
    return p;
}

void *ae__calloc(size_t count, size_t n)
{
    size_t total;
    void *p;
    if (ae__mul_size(count, n, &total) != 0) return NULL;
    p = ae__malloc(total);
    if (p) memset(p, 0, total);
    return p;
}

void *ae__realloc(void *p, size_t old_n, size_t new_n)
{
    void *q;
    if (!p) return ae__malloc(new_n);
    if (new_n == 0) { ae__free(p, old_n); return NULL; }
    q = g_alloc_fn ? g_alloc_fn(g_alloc_ud, p, old_n, new_n) : realloc(p, new_n);
    return q; /* on failure p stays valid and counted */
}

void ae__free(void *p, size_t n)
{
    if (!p) return;
    if (g_alloc_fn) g_alloc_fn(g_alloc_ud, p, n, 0);
    else free(p);
    atomic_fetch_sub(&g_live_blocks, 1);
}

/* Aligned blocks: over-allocate by the alignment and keep the offset in the
 * byte before the returned pointer, so any hook (which only promises malloc
 * alignment) can serve them. */
#define AE__ALIGN 64
void *ae__malloc_aligned(size_t n)
{
    unsigned char *raw, *p;
    if (n == 0 || n > SIZE_MAX - AE__ALIGN) return NULL;
    raw = ae__malloc(n + AE__ALIGN);
    if (!raw) return NULL;
    p = (unsigned char *)(((uintptr_t)raw + AE__ALIGN) & ~(uintptr_t)(AE__ALIGN - 1));
    p[-1] = (unsigned char)(p - raw);
    return p;
}

void ae__free_aligned(void *p, size_t n)
{
    unsigned char *q = p;
    if (!q) return;
    ae__free(q - q[-1], n + AE__ALIGN);
}

int ae__mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) return -1;
    *out = a * b;
    return 0;
}

/* ---- RNG: xoshiro256**, seeded through splitmix64 ----------------------- */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void ae__rng_seed(ae__rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t ae__rng_next(ae__rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 45);
    return result;
}

double ae__rng_uniform(ae__rng *r) { return (double)(ae__rng_next(r) >> 11) * 0x1.0p-53; }

size_t ae__rng_below(ae__rng *r, size_t n)
{
    /* rejection sampling removes modulo bias */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n, x;
    do x = ae__rng_next(r); while (x >= limit);
    return (size_t)(x % n);
}

void ae__shuffle(ae__rng *r, size_t *v, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = ae__rng_below(r, i), t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

/* ---- CRC-32 (IEEE, as zlib) ------------------------------------------------ */
/* table for the reflected polynomial 0xEDB88320, generated once offline */
static const uint32_t crc_table[256] = {
    0x00000000u, 0x77073096u, 0xEE0E612Cu, 0x990951BAu, 0x076DC419u, 0x706AF48Fu,
    0xE963A535u, 0x9E6495A3u, 0x0EDB8832u, 0x79DCB8A4u, 0xE0D5E91Eu, 0x97D2D988u,
    0x09B64C2Bu, 0x7EB17CBDu, 0xE7B82D07u, 0x90BF1D91u, 0x1DB71064u, 0x6AB020F2u,
    0xF3B97148u, 0x84BE41DEu, 0x1ADAD47Du, 0x6DDDE4EBu, 0xF4D4B551u, 0x83D385C7u,
    0x136C9856u, 0x646BA8C0u, 0xFD62F97Au, 0x8A65C9ECu, 0x14015C4Fu, 0x63066CD9u,
    0xFA0F3D63u, 0x8D080DF5u, 0x3B6E20C8u, 0x4C69105Eu, 0xD56041E4u, 0xA2677172u,
    0x3C03E4D1u, 0x4B04D447u, 0xD20D85FDu, 0xA50AB56Bu, 0x35B5A8FAu, 0x42B2986Cu,
    0xDBBBC9D6u, 0xACBCF940u, 0x32D86CE3u, 0x45DF5C75u, 0xDCD60DCFu, 0xABD13D59u,
    0x26D930ACu, 0x51DE003Au, 0xC8D75180u, 0xBFD06116u, 0x21B4F4B5u, 0x56B3C423u,
    0xCFBA9599u, 0xB8BDA50Fu, 0x2802B89Eu, 0x5F058808u, 0xC60CD9B2u, 0xB10BE924u,
    0x2F6F7C87u, 0x58684C11u, 0xC1611DABu, 0xB6662D3Du, 0x76DC4190u, 0x01DB7106u,
    0x98D220BCu, 0xEFD5102Au, 0x71B18589u, 0x06B6B51Fu, 0x9FBFE4A5u, 0xE8B8D433u,
    0x7807C9A2u, 0x0F00F934u, 0x9609A88Eu, 0xE10E9818u, 0x7F6A0DBBu, 0x086D3D2Du,
    0x91646C97u, 0xE6635C01u, 0x6B6B51F4u, 0x1C6C6162u, 0x856530D8u, 0xF262004Eu,
    0x6C0695EDu, 0x1B01A57Bu, 0x8208F4C1u, 0xF50FC457u, 0x65B0D9C6u, 0x12B7E950u,
    0x8BBEB8EAu, 0xFCB9887Cu, 0x62DD1DDFu, 0x15DA2D49u, 0x8CD37CF3u, 0xFBD44C65u,
    0x4DB26158u, 0x3AB551CEu, 0xA3BC0074u, 0xD4BB30E2u, 0x4ADFA541u, 0x3DD895D7u,
    0xA4D1C46Du, 0xD3D6F4FBu, 0x4369E96Au, 0x346ED9FCu, 0xAD678846u, 0xDA60B8D0u,
    0x44042D73u, 0x33031DE5u, 0xAA0A4C5Fu, 0xDD0D7CC9u, 0x5005713Cu, 0x270241AAu,
    0xBE0B1010u, 0xC90C2086u, 0x5768B525u, 0x206F85B3u, 0xB966D409u, 0xCE61E49Fu,
    0x5EDEF90Eu, 0x29D9C998u, 0xB0D09822u, 0xC7D7A8B4u, 0x59B33D17u, 0x2EB40D81u,
    0xB7BD5C3Bu, 0xC0BA6CADu, 0xEDB88320u, 0x9ABFB3B6u, 0x03B6E20Cu, 0x74B1D29Au,
    0xEAD54739u, 0x9DD277AFu, 0x04DB2615u, 0x73DC1683u, 0xE3630B12u, 0x94643B84u,
    0x0D6D6A3Eu, 0x7A6A5AA8u, 0xE40ECF0Bu, 0x9309FF9Du, 0x0A00AE27u, 0x7D079EB1u,
    0xF00F9344u, 0x8708A3D2u, 0x1E01F268u, 0x6906C2FEu, 0xF762575Du, 0x806567CBu,
    0x196C3671u, 0x6E6B06E7u, 0xFED41B76u, 0x89D32BE0u, 0x10DA7A5Au, 0x67DD4ACCu,
    0xF9B9DF6Fu, 0x8EBEEFF9u, 0x17B7BE43u, 0x60B08ED5u, 0xD6D6A3E8u, 0xA1D1937Eu,
    0x38D8C2C4u, 0x4FDFF252u, 0xD1BB67F1u, 0xA6BC5767u, 0x3FB506DDu, 0x48B2364Bu,
    0xD80D2BDAu, 0xAF0A1B4Cu, 0x36034AF6u, 0x41047A60u, 0xDF60EFC3u, 0xA867DF55u,
    0x316E8EEFu, 0x4669BE79u, 0xCB61B38Cu, 0xBC66831Au, 0x256FD2A0u, 0x5268E236u,
    0xCC0C7795u, 0xBB0B4703u, 0x220216B9u, 0x5505262Fu, 0xC5BA3BBEu, 0xB2BD0B28u,
    0x2BB45A92u, 0x5CB36A04u, 0xC2D7FFA7u, 0xB5D0CF31u, 0x2CD99E8Bu, 0x5BDEAE1Du,
    0x9B64C2B0u, 0xEC63F226u, 0x756AA39Cu, 0x026D930Au, 0x9C0906A9u, 0xEB0E363Fu,
    0x72076785u, 0x05005713u, 0x95BF4A82u, 0xE2B87A14u, 0x7BB12BAEu, 0x0CB61B38u,
    0x92D28E9Bu, 0xE5D5BE0Du, 0x7CDCEFB7u, 0x0BDBDF21u, 0x86D3D2D4u, 0xF1D4E242u,
    0x68DDB3F8u, 0x1FDA836Eu, 0x81BE16CDu, 0xF6B9265Bu, 0x6FB077E1u, 0x18B74777u,
    0x88085AE6u, 0xFF0F6A70u, 0x66063BCAu, 0x11010B5Cu, 0x8F659EFFu, 0xF862AE69u,
    0x616BFFD3u, 0x166CCF45u, 0xA00AE278u, 0xD70DD2EEu, 0x4E048354u, 0x3903B3C2u,
    0xA7672661u, 0xD06016F7u, 0x4969474Du, 0x3E6E77DBu, 0xAED16A4Au, 0xD9D65ADCu,
    0x40DF0B66u, 0x37D83BF0u, 0xA9BCAE53u, 0xDEBB9EC5u, 0x47B2CF7Fu, 0x30B5FFE9u,
    0xBDBDF21Cu, 0xCABAC28Au, 0x53B39330u, 0x24B4A3A6u, 0xBAD03605u, 0xCDD70693u,
    0x54DE5729u, 0x23D967BFu, 0xB3667A2Eu, 0xC4614AB8u, 0x5D681B02u, 0x2A6F2B94u,
    0xB40BBE37u, 0xC30C8EA1u, 0x5A05DF1Bu, 0x2D02EF8Du,
};

uint32_t ae__crc32(uint32_t crc, const void *data, size_t n)
{
    const unsigned char *p = data;
    crc = ~crc;
    while (n--) crc = crc_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

