/*
 * A minimal NVTX tool for tests: loaded by any NVTX v3 client through NVTX_INJECTION64_PATH, it
 * writes one JSON line per push / pop / mark / category name to the file named by
 * NVTX_RECORDER_OUT, so a test can check exactly what Nsight Systems would have received
 * (domain, message, category, colour, payload, per-thread nesting depth) without Nsight Systems.
 *
 * Implements the NVTX injection ABI (InitializeInjectionNvtx2): it asks the client's export table
 * for the CORE (global domain) and CORE2 (named domains) callback tables and fills in its handlers.
 * Build: cc -shared -fPIC -I<dir holding nvtx3/> nvtx_recorder.c -o libnvtx_recorder.so -lpthread
 */
#include <nvtx3/nvToolsExt.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef struct Domain {
    char *name;
    char *categories[64]; /* names by category id; ids >= 64 are reported without a name */
} Domain;

typedef struct RegisteredString {
    char *value;
} RegisteredString;

static FILE *g_out;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static Domain g_global_domain = {"", {0}};
static __thread int t_depth;

static Domain *domain_of(nvtxDomainHandle_t handle) {
    return handle ? (Domain *)handle : &g_global_domain;
}

/* JSON string escaping: enough for any byte string NVTX can carry. */
static void put_json_string(const char *s) {
    fputc('"', g_out);
    for (const unsigned char *p = (const unsigned char *)s; *p; ++p) {
        if (*p == '"' || *p == '\\') {
            fputc('\\', g_out);
            fputc(*p, g_out);
        } else if (*p < 0x20) {
            fprintf(g_out, "\\u%04x", *p);
        } else {
            fputc(*p, g_out);
        }
    }
    fputc('"', g_out);
}

static const char *message_of(const nvtxEventAttributes_t *a, char *buf, size_t len) {
    switch (a->messageType) {
    case NVTX_MESSAGE_TYPE_ASCII:
        return a->message.ascii ? a->message.ascii : "";
    case NVTX_MESSAGE_TYPE_REGISTERED:
        return a->message.registered ? ((RegisteredString *)a->message.registered)->value : "";
    case NVTX_MESSAGE_UNKNOWN:
        return "";
    default:
        snprintf(buf, len, "<message type %d>", (int)a->messageType);
        return buf;
    }
}

static void put_payload(const nvtxEventAttributes_t *a) {
    switch (a->payloadType) {
    case NVTX_PAYLOAD_TYPE_INT64: fprintf(g_out, "%lld", (long long)a->payload.llValue); break;
    case NVTX_PAYLOAD_TYPE_UNSIGNED_INT64: fprintf(g_out, "%llu", (unsigned long long)a->payload.ullValue); break;
    case NVTX_PAYLOAD_TYPE_INT32: fprintf(g_out, "%d", a->payload.iValue); break;
    case NVTX_PAYLOAD_TYPE_UNSIGNED_INT32: fprintf(g_out, "%u", a->payload.uiValue); break;
    case NVTX_PAYLOAD_TYPE_DOUBLE: fprintf(g_out, "%.17g", a->payload.dValue); break;
    case NVTX_PAYLOAD_TYPE_FLOAT: fprintf(g_out, "%.9g", (double)a->payload.fValue); break;
    default: fputs("null", g_out);
    }
}

/* One line per event; depth is the thread's push/pop nesting after a push / before a pop
 * (for "category" lines the same slot carries the category id). */
static void record(const char *event, Domain *d, const nvtxEventAttributes_t *a, const char *text, int depth) {
    char buf[64];
    pthread_mutex_lock(&g_lock);
    if (g_out) {
        fprintf(g_out, "{\"event\": \"%s\", \"domain\": ", event);
        put_json_string(d->name);
        fprintf(g_out, ", \"tid\": %ld, \"%s\": %d", (long)syscall(SYS_gettid),
                strcmp(event, "category") ? "depth" : "category", depth);
        if (a) {
            fputs(", \"message\": ", g_out);
            put_json_string(message_of(a, buf, sizeof buf));
            fprintf(g_out, ", \"category\": %u, \"category_name\": ", a->category);
            put_json_string(a->category < 64 && d->categories[a->category] ? d->categories[a->category] : "");
            if (a->colorType == NVTX_COLOR_ARGB)
                fprintf(g_out, ", \"color\": \"0x%08X\"", a->color);
            else
                fputs(", \"color\": null", g_out);
            fputs(", \"payload\": ", g_out);
            put_payload(a);
        } else if (text) {
            fputs(", \"message\": ", g_out);
            put_json_string(text);
        }
        fputs("}\n", g_out);
        fflush(g_out);
    }
    pthread_mutex_unlock(&g_lock);
}

static void name_category(Domain *d, uint32_t id, const char *name) {
    pthread_mutex_lock(&g_lock);
    if (id < 64) {
        free(d->categories[id]);
        d->categories[id] = strdup(name ? name : "");
    }
    pthread_mutex_unlock(&g_lock);
    record("category", d, NULL, name ? name : "", (int)id);
}


/* ---- CORE2: named domains ------------------------------------------------------------------ */
static nvtxDomainHandle_t NVTX_API rec_DomainCreateA(const char *name) {
    Domain *d = calloc(1, sizeof *d);
    d->name = strdup(name ? name : "");
    record("domain", d, NULL, d->name, -1);
    return (nvtxDomainHandle_t)d;
}

static void NVTX_API rec_DomainDestroy(nvtxDomainHandle_t handle) {
    (void)handle; /* kept alive: string handles and late events may still point at it */
}

static nvtxStringHandle_t NVTX_API rec_DomainRegisterStringA(nvtxDomainHandle_t handle, const char *s) {
    (void)handle;
    RegisteredString *r = malloc(sizeof *r);
    r->value = strdup(s ? s : "");
    return (nvtxStringHandle_t)r;
}

static void NVTX_API rec_DomainNameCategoryA(nvtxDomainHandle_t handle, uint32_t id, const char *name) {
    name_category(domain_of(handle), id, name);
}

static int NVTX_API rec_DomainRangePushEx(nvtxDomainHandle_t handle, const nvtxEventAttributes_t *a) {
    int depth = ++t_depth;
    record("push", domain_of(handle), a, NULL, depth);
    return depth - 1;
}

static int NVTX_API rec_DomainRangePop(nvtxDomainHandle_t handle) {
    int depth = t_depth;
    if (t_depth > 0) --t_depth;
    record("pop", domain_of(handle), NULL, NULL, depth);
    return depth > 0 ? depth - 1 : -1;
}

static void NVTX_API rec_DomainMarkEx(nvtxDomainHandle_t handle, const nvtxEventAttributes_t *a) {
    record("mark", domain_of(handle), a, NULL, t_depth);
}

static void NVTX_API rec_Initialize(const void *reserved) { (void)reserved; }

/* ---- CORE: the global (unnamed) domain ----------------------------------------------------- */
static int NVTX_API rec_RangePushEx(const nvtxEventAttributes_t *a) { return rec_DomainRangePushEx(NULL, a); }
static int NVTX_API rec_RangePop(void) { return rec_DomainRangePop(NULL); }
static void NVTX_API rec_MarkEx(const nvtxEventAttributes_t *a) { rec_DomainMarkEx(NULL, a); }

static nvtxEventAttributes_t ascii_attributes(const char *message) {
    nvtxEventAttributes_t a;
    memset(&a, 0, sizeof a);
    a.version = NVTX_VERSION;
    a.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
    a.messageType = NVTX_MESSAGE_TYPE_ASCII;
    a.message.ascii = message;
    return a;
}

static int NVTX_API rec_RangePushA(const char *message) {
    nvtxEventAttributes_t a = ascii_attributes(message);
    return rec_RangePushEx(&a);
}

static void NVTX_API rec_MarkA(const char *message) {
    nvtxEventAttributes_t a = ascii_attributes(message);
    rec_MarkEx(&a);
}

static void NVTX_API rec_NameCategoryA(uint32_t id, const char *name) { name_category(&g_global_domain, id, name); }

/* ---- injection entry point ----------------------------------------------------------------- */
static int set_entry(NvtxFunctionTable table, unsigned int size, unsigned int id, NvtxFunctionPointer fn) {
    if (id >= size || !table[id]) return 0;
    *table[id] = fn;
    return 1;
}

#define SET(table, size, id, fn) ok &= set_entry(table, size, id, (NvtxFunctionPointer)(fn))

NVTX_DYNAMIC_EXPORT int NVTX_API InitializeInjectionNvtx2(NvtxGetExportTableFunc_t getExportTable) {
    const char *path = getenv("NVTX_RECORDER_OUT");
    if (!path || !*path) {
        fprintf(stderr, "nvtx_recorder: NVTX_RECORDER_OUT is not set; not attaching\n");
        return 0;
    }
    g_out = fopen(path, "a");
    if (!g_out) {
        perror("nvtx_recorder: cannot open NVTX_RECORDER_OUT");
        return 0;
    }
    const NvtxExportTableCallbacks *callbacks =
        (const NvtxExportTableCallbacks *)getExportTable(NVTX_ETID_CALLBACKS);
    if (!callbacks || callbacks->struct_size < sizeof *callbacks) return 0;

    NvtxFunctionTable core = 0, core2 = 0;
    unsigned int core_size = 0, core2_size = 0;
    if (!callbacks->GetModuleFunctionTable(NVTX_CB_MODULE_CORE, &core, &core_size) ||
        !callbacks->GetModuleFunctionTable(NVTX_CB_MODULE_CORE2, &core2, &core2_size))
        return 0;

    int ok = 1;
    SET(core, core_size, NVTX_CBID_CORE_MarkEx, rec_MarkEx);
    SET(core, core_size, NVTX_CBID_CORE_MarkA, rec_MarkA);
    SET(core, core_size, NVTX_CBID_CORE_RangePushEx, rec_RangePushEx);
    SET(core, core_size, NVTX_CBID_CORE_RangePushA, rec_RangePushA);
    SET(core, core_size, NVTX_CBID_CORE_RangePop, rec_RangePop);
    SET(core, core_size, NVTX_CBID_CORE_NameCategoryA, rec_NameCategoryA);
    SET(core2, core2_size, NVTX_CBID_CORE2_DomainMarkEx, rec_DomainMarkEx);
    SET(core2, core2_size, NVTX_CBID_CORE2_DomainRangePushEx, rec_DomainRangePushEx);
    SET(core2, core2_size, NVTX_CBID_CORE2_DomainRangePop, rec_DomainRangePop);
    SET(core2, core2_size, NVTX_CBID_CORE2_DomainNameCategoryA, rec_DomainNameCategoryA);
    SET(core2, core2_size, NVTX_CBID_CORE2_DomainRegisterStringA, rec_DomainRegisterStringA);
    SET(core2, core2_size, NVTX_CBID_CORE2_DomainCreateA, rec_DomainCreateA);
    SET(core2, core2_size, NVTX_CBID_CORE2_DomainDestroy, rec_DomainDestroy);
    SET(core2, core2_size, NVTX_CBID_CORE2_Initialize, rec_Initialize);
    if (!ok) fprintf(stderr, "nvtx_recorder: the client's callback tables are smaller than expected\n");
    return ok;
}
