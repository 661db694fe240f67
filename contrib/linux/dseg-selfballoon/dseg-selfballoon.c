/*
 * dseg-selfballoon: self-ballooning for a running KVM guest of QEMU, so
 * that one VMM segment covers most of its memory.
 *
 * It runs next to the VMM (in the Linux that runs KVM on qemu-dseg, with
 * the dseg-vmm module loaded) and drives an unmodified QEMU over QMP.  The
 * guest's RAM below the 4 GiB I/O gap is ordinary memory; the guest gives
 * some of it back with its balloon driver (virtio-balloon), and the same
 * amount comes back at the top of its physical address space as a DIMM
 * (ACPI memory hotplug) backed by /dev/dseg-vmm: host-physically
 * contiguous memory, over which the module arms the VMM segment as soon as
 * KVM maps it.  docs/devel/dseg-selfballoon.rst gives the policy and its
 * reasons; in short:
 *
 *   1. It waits until the guest's balloon statistics show room to move at
 *      least one memory block (--block) while keeping --reserve free, and
 *      moves min(room, below-gap RAM - --keep), in whole blocks.
 *   2. It asks the balloon for that much first and waits for it: Linux's
 *      balloon takes its pages from the highest zone, so inflated after
 *      the hot-add it would give back the new memory instead.  What the
 *      guest does not give within --timeout it is not asked for again.
 *   3. It hot-adds what the guest gave, in whole blocks, from
 *      /dev/dseg-vmm (object-add, device_add pc-dimm) and gives any
 *      remainder back to the guest.  The memory is taken before the
 *      balloon is asked, so that a pool without that much costs the
 *      guest nothing; if the plug fails, the guest gets all of it back.
 *   4. It waits for the guest to online the new memory (its total rises).
 *
 * QEMU puts the DIMM at the first GiB boundary above the guest's RAM: at
 * 4 GiB for a guest whose RAM is all below the gap, right after the RAM
 * above the gap for one whose RAM QEMU split (that RAM must end on a GiB
 * boundary), so that a segment over that RAM grows over the DIMM.  Such
 * a guest's balloon must take memory below the gap: the docs give the
 * NUMA layout that makes Linux's do so.
 *
 * --undo reverses it: the balloon lets go first, so that the guest has
 * room to move its pages off the DIMMs, then the DIMMs are unplugged
 * (the guest must agree: ACPI eject) and their memory freed.
 *
 * --guard stays and refuses every migration of the VM; --execute JSON
 * runs one QMP command and prints the reply (a QMP client for hosts
 * without one).
 *
 * Usage: dseg-selfballoon --qmp PATH [--balloon ID] [--block MIB]
 *            [--keep MIB] [--reserve MIB] [--wait S] [--timeout S]
 *            [--mem-path PATH] [--undo | --guard | --execute JSON]
 * Exit status: 0 moved (or undone; --guard: QEMU exited; --execute: QEMU
 * ran the command), 1 bad use or QMP failure (--execute: QEMU refused the
 * command), 2 the guest refused (nothing moved, or with --undo the DIMM
 * stays), 3 the hot-add failed (nothing moved).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MIB             ((uint64_t)1 << 20)
#define ID_PREFIX       "dseg-selfballoon"
#define DIMM            ID_PREFIX "-dimm0"   /* the one DIMM it adds */
#define RAM             ID_PREFIX "-ram0"    /* and its memory */

enum { EXIT_OK, EXIT_USE, EXIT_REFUSED, EXIT_HOTADD };

static struct {
    const char *qmp, *balloon, *mem_path;
    uint64_t block, keep, reserve;
    int wait, timeout;
    bool undo, guard;
    const char *execute;
} opt = {
    .balloon = "balloon0", .mem_path = "/dev/dseg-vmm",
    .block = 128 * MIB, .keep = 64 * MIB, .reserve = 32 * MIB,
    .wait = 60, .timeout = 30,
};

static FILE *qmp_in, *qmp_out;
static char reply[1 << 20];
static char error_desc[1024];
static struct timespec t0;

static double elapsed(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9;
}

/* One progress line, stamped with the seconds since the start. */
static void __attribute__((format(printf, 1, 2))) say(const char *fmt, ...)
{
    va_list ap;

    printf("dseg-selfballoon: %6.1f s: ", elapsed());
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void __attribute__((noreturn, format(printf, 2, 3)))
die(int status, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "dseg-selfballoon: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(status);
}

/* The number after "KEY": in @json, if there is one. */
static bool json_int(const char *json, const char *key, int64_t *val)
{
    char pat[80];
    const char *p;
    char *end;

    snprintf(pat, sizeof(pat), "\"%s\":", key);
    p = strstr(json, pat);
    if (!p) {
        return false;
    }
    errno = 0;
    *val = strtoll(p + strlen(pat), &end, 10);
    return !errno && end != p + strlen(pat);
}

/* The string after "KEY": in @json, unescaped only as far as \" and \\. */
static void json_str(const char *json, const char *key, char *buf,
                     size_t size)
{
    char pat[80];
    const char *p;
    size_t n = 0;

    snprintf(pat, sizeof(pat), "\"%s\": \"", key);
    p = strstr(json, pat);
    if (p) {
        for (p += strlen(pat); *p && *p != '"' && n + 1 < size; p++) {
            if (*p == '\\' && p[1]) {
                p++;
            }
            buf[n++] = *p;
        }
    }
    buf[n] = '\0';
}

/*
 * Whether the JSON object @json has the key @key at its top level (not
 * in an object or array inside it, nor in a string).
 */
static bool json_top_key(const char *json, const char *key)
{
    size_t len = strlen(key);
    int depth = 0;
    const char *p;

    for (p = json; *p; p++) {
        if (*p == '{' || *p == '[') {
            depth++;
        } else if (*p == '}' || *p == ']') {
            depth--;
        } else if (*p == '"') {
            const char *start = p + 1;

            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && p[1]) {
                    p++;
                }
            }
            if (!*p) {
                return false;
            }
            if (depth == 1 && (size_t)(p - start) == len &&
                !strncmp(start, key, len) &&
                p[1 + strspn(p + 1, " ")] == ':') {
                return true;
            }
        }
    }
    return false;
}

/*
 * The next line QEMU sends that is not an event: the greeting or a
 * reply.  NULL at end of file.
 */
static const char *qmp_read(void)
{
    while (fgets(reply, sizeof(reply), qmp_in)) {
        if (!json_top_key(reply, "event")) {
            return reply;
        }
    }
    return NULL;
}

/*
 * Send the QMP command @json, a JSON object on one line, and return
 * QEMU's reply to it.  A QMP connection that breaks ends the program.
 */
static const char *qmp_send(const char *json)
{
    const char *line;

    if (fputs(json, qmp_out) == EOF || fputc('\n', qmp_out) == EOF ||
        fflush(qmp_out)) {
        die(EXIT_USE, "QMP: %s", strerror(errno));
    }
    line = qmp_read();
    if (!line) {
        die(EXIT_USE, "QMP: QEMU closed the connection");
    }
    return line;
}

/*
 * Run one QMP command, given as the JSON of its "execute" and
 * "arguments"; its reply, or NULL with error_desc set if QEMU refused it.
 */
static const char * __attribute__((format(printf, 1, 2)))
qmp(const char *fmt, ...)
{
    char json[4096];
    const char *line;
    va_list ap;
    int n;

    va_start(ap, fmt);
    json[0] = '{';
    n = vsnprintf(json + 1, sizeof(json) - 2, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(json) - 2) {
        die(EXIT_USE, "QMP: a command of more than %zu bytes",
            sizeof(json) - 3);
    }
    strcpy(json + 1 + n, "}");
    line = qmp_send(json);
    if (!json_top_key(line, "return")) {
        json_str(line, "desc", error_desc, sizeof(error_desc));
        if (!error_desc[0]) {
            snprintf(error_desc, sizeof(error_desc), "%s", line);
        }
        return NULL;
    }
    return line;
}

/* Command @name, without arguments, must succeed: its reply's @key. */
static uint64_t qmp_int(const char *key, const char *name)
{
    const char *r = qmp("\"execute\": \"%s\"", name);
    int64_t v;

    if (!r) {
        die(EXIT_USE, "QMP %s: %s", name, error_desc);
    }
    if (!json_int(r, key, &v) || v < 0) {
        die(EXIT_USE, "QMP %s: no \"%s\" in %s", name, key, r);
    }
    return v;
}

static void qmp_connect(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        die(EXIT_USE, "--qmp %s: the path is too long for a socket", path);
    }
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
        die(EXIT_USE, "--qmp %s: %s", path, strerror(errno));
    }
    qmp_in = fdopen(fd, "r");
    qmp_out = fdopen(dup(fd), "w");
    if (!qmp_in || !qmp_out || !qmp_read() || !strstr(reply, "\"QMP\"")) {
        die(EXIT_USE, "--qmp %s: no QMP greeting", path);
    }
    if (!qmp("\"execute\": \"qmp_capabilities\"")) {
        die(EXIT_USE, "QMP qmp_capabilities: %s", error_desc);
    }
}

/* The guest's logical RAM size as the balloon sees it. */
static uint64_t balloon_actual(void)
{
    return qmp_int("actual", "query-balloon");
}

static void balloon_set(uint64_t bytes)
{
    if (!qmp("\"execute\": \"balloon\", \"arguments\": "
             "{\"value\": %" PRIu64 "}", bytes)) {
        die(EXIT_USE, "QMP balloon %" PRIu64 ": %s", bytes, error_desc);
    }
}

/*
 * The guest's memory statistics from its balloon driver: total and
 * available (or free) bytes, and @when QEMU got them (its last-update);
 * false if the driver has not sent any.
 */
static bool guest_stats(uint64_t *total, uint64_t *avail, int64_t *when)
{
    const char *r = qmp("\"execute\": \"qom-get\", \"arguments\": "
                        "{\"path\": \"/machine/peripheral/%s\", "
                        "\"property\": \"guest-stats\"}", opt.balloon);
    int64_t last, t, a;

    if (!r) {
        die(EXIT_USE, "QMP qom-get %s guest-stats: %s", opt.balloon,
            error_desc);
    }
    if (!json_int(r, "last-update", &last) || !last ||
        !json_int(r, "stat-total-memory", &t) || t < 0) {
        return false;
    }
    if ((!json_int(r, "stat-available-memory", &a) || a < 0) &&
        (!json_int(r, "stat-free-memory", &a) || a < 0)) {
        return false;
    }
    *total = t;
    *avail = a;
    if (when) {
        *when = last;
    }
    return true;
}

/* Whole blocks of @bytes. */
static uint64_t blocks(uint64_t bytes)
{
    return bytes / opt.block * opt.block;
}

/*
 * Step 1: how much to move, once the guest's statistics show room for at
 * least a block; 0 if they never do within --wait seconds.
 */
static uint64_t decide(uint64_t below_gap)
{
    uint64_t total = 0, avail = 0, most, move = 0;
    int64_t first = -1, when = 0;
    bool stats = false;
    double until = elapsed() + opt.wait;

    most = below_gap > opt.keep ? blocks(below_gap - opt.keep) : 0;
    if (!most) {
        say("the guest has %" PRIu64 " MiB below the gap and keeps %"
            PRIu64 " MiB: nothing to move", below_gap / MIB,
            opt.keep / MIB);
        return 0;
    }
    if (!qmp("\"execute\": \"qom-set\", \"arguments\": "
             "{\"path\": \"/machine/peripheral/%s\", "
             "\"property\": \"guest-stats-polling-interval\", \"value\": 1}",
             opt.balloon)) {
        die(EXIT_USE, "--balloon %s: %s", opt.balloon, error_desc);
    }
    /*
     * Only statistics sent after this program asked count: QEMU keeps the
     * last ones, and a guest whose driver is gone sends no more.
     */
    while (elapsed() < until) {
        stats = guest_stats(&total, &avail, &when) && first >= 0 &&
                when != first;
        if (first < 0) {
            first = when;
        }
        if (stats) {
            move = avail > opt.reserve ? blocks(avail - opt.reserve) : 0;
            if (move > most) {
                move = most;
            }
            if (move) {
                break;
            }
        }
        sleep(1);
    }
    if (!stats) {
        say("the guest's balloon driver sent no statistics in %d s: it is "
            "not asked", opt.wait);
    } else if (!move) {
        say("the guest has %" PRIu64 " MiB, %" PRIu64 " MiB available: no "
            "room for a block of %" PRIu64 " MiB in %d s", total / MIB,
            avail / MIB, opt.block / MIB, opt.wait);
    } else {
        say("the guest has %" PRIu64 " MiB, %" PRIu64 " MiB available, %"
            PRIu64 " MiB below the gap: moving %" PRIu64 " MiB",
            total / MIB, avail / MIB, below_gap / MIB, move / MIB);
    }
    return move;
}

/*
 * Set the balloon's target to @target bytes of guest RAM and wait until
 * the guest is there, or has made no progress for --timeout seconds;
 * where it got to.
 */
static uint64_t balloon_to(uint64_t target)
{
    uint64_t now = balloon_actual(), last = now;
    double since = elapsed();

    balloon_set(target);
    while (now != target && elapsed() - since < opt.timeout) {
        usleep(200 * 1000);
        now = balloon_actual();
        if (now != last) {
            last = now;
            since = elapsed();
        }
    }
    return now;
}

/* Step 2: ask the balloon for @move bytes; what the guest gave. */
static uint64_t inflate(uint64_t actual, uint64_t move)
{
    uint64_t given = actual - balloon_to(actual - move);

    say("the guest gave back %" PRIu64 " of %" PRIu64 " MiB",
        given / MIB, move / MIB);
    return given;
}

/* The guest gets back what its balloon holds beyond @actual. */
static void give_back(uint64_t actual)
{
    uint64_t now = balloon_to(actual);

    say("the balloon let go: the guest has %" PRIu64 " MiB%s", now / MIB,
        now == actual ? "" : ", less than it should: its balloon is stuck");
}

/*
 * The host's memory for the DIMM first, @size bytes from --mem-path (the
 * module zeroes it), so that a pool without that much costs the guest
 * nothing; false if QEMU could not have it.  Memory that QEMU let go a
 * moment ago may still be on its way back to the pool: up to 3 s.
 */
static bool memory_add(uint64_t size)
{
    double until = elapsed() + 3;

    while (!qmp("\"execute\": \"object-add\", \"arguments\": "
                "{\"qom-type\": \"memory-backend-file\", \"id\": \"" RAM
                "\", \"size\": %" PRIu64 ", \"mem-path\": \"%s\", "
                "\"share\": true}", size, opt.mem_path)) {
        if (!strstr(error_desc, "Cannot allocate memory") ||
            elapsed() > until) {
            say("hot-add refused: memory %s: %s", opt.mem_path, error_desc);
            return false;
        }
        usleep(100 * 1000);
    }
    return true;
}

/* The DIMM's memory, if there is any without a DIMM. */
static void memory_del(void)
{
    qmp("\"execute\": \"object-del\", \"arguments\": {\"id\": \"" RAM
        "\"}");
}

/* Step 3: plug the DIMM; false if QEMU refused. */
static bool plug(void)
{
    if (!qmp("\"execute\": \"device_add\", \"arguments\": "
             "{\"driver\": \"pc-dimm\", \"id\": \"" DIMM "\", "
             "\"memdev\": \"" RAM "\"}")) {
        say("hot-add refused: pc-dimm: %s", error_desc);
        return false;
    }
    return true;
}

/*
 * The flat JSON object around @p in @json (a DIMM's "data": no object
 * inside it), copied into @buf.
 */
static const char *json_object_at(const char *json, const char *p,
                                  char *buf, size_t size)
{
    const char *start = p, *end = strchr(p, '}');
    size_t n;

    while (start > json && *start != '{') {
        start--;
    }
    n = end ? (size_t)(end - start) + 1 : strlen(start);
    if (n >= size) {
        n = size - 1;
    }
    memcpy(buf, start, n);
    buf[n] = '\0';
    return buf;
}

/* Whether the DIMM is there, from QEMU's list: its gPA and size. */
static bool our_dimm(uint64_t *addr, uint64_t *size)
{
    const char *r = qmp("\"execute\": \"query-memory-devices\"");
    const char *p;
    char dimm[1024];
    int64_t v;

    if (!r) {
        die(EXIT_USE, "QMP query-memory-devices: %s", error_desc);
    }
    *addr = *size = 0;
    p = strstr(r, "\"id\": \"" DIMM "\"");
    if (!p) {
        return false;
    }
    json_object_at(r, p, dimm, sizeof(dimm));
    if (json_int(dimm, "addr", &v)) {
        *addr = v;
    }
    if (json_int(dimm, "size", &v)) {
        *size = v;
    }
    return true;
}

/* The integer @property of QOM object @path, if it has one. */
static bool qom_int(const char *path, const char *property, int64_t *val)
{
    const char *r = qmp("\"execute\": \"qom-get\", \"arguments\": "
                        "{\"path\": \"%s\", \"property\": \"%s\"}",
                        path, property);

    return r && json_int(r, "return", val) && *val >= 0;
}

/*
 * The guest's RAM: its size, how much of it is @below the I/O gap, and
 * where its RAM @above the gap ends (0 without any), as QEMU laid it out
 * (the memory regions ram-below-4g and ram-above-4g of pc and q35
 * machines).  Refused: a guest with memory plugged already (a second
 * DIMM would not continue the first's segment), one without room for
 * DIMMs, and one whose DIMMs would not start right after its RAM above
 * the gap (QEMU's device-memory region starts at the next GiB boundary,
 * or later), where no segment could cover both.
 */
static uint64_t ram_split(uint64_t *below, uint64_t *above)
{
    static const char regions[] = "/machine/unattached/ram-%s-4g[0]";
    const char *r = qmp("\"execute\": \"query-memory-size-summary\"");
    int64_t base, plugged = 0, v, start, dimms;
    char path[64];

    if (!r || !json_int(r, "base-memory", &base) || base < 0) {
        die(EXIT_USE, "QMP query-memory-size-summary: %s",
            r ? r : error_desc);
    }
    /* Without slots for DIMMs, QEMU reports no plugged memory at all. */
    if (json_int(r, "plugged-memory", &plugged) && plugged > 0) {
        die(EXIT_USE, "the guest has %" PRId64 " MiB of memory plugged "
            "already: not handled", plugged / (int64_t)MIB);
    }
    if (!qom_int("/machine/device-memory[0]", "addr", &dimms)) {
        die(EXIT_USE, "the guest has no room for DIMMs (QEMU's -m "
            "SIZE,slots=N,maxmem=MAX)");
    }
    snprintf(path, sizeof(path), regions, "below");
    if (!qom_int(path, "size", &v)) {
        die(EXIT_USE, "QEMU has no memory region %s (a pc or q35 "
            "machine's RAM below the gap): not handled", path);
    }
    *below = v;
    *above = 0;
    snprintf(path, sizeof(path), regions, "above");
    if (qom_int(path, "addr", &start) && qom_int(path, "size", &v)) {
        *above = start + v;
        if ((uint64_t)dimms != *above) {
            die(EXIT_USE, "the guest's RAM above the gap is at [0x%" PRIx64
                ", 0x%" PRIx64 "), and QEMU would plug a DIMM at 0x%"
                PRIx64 ": no segment could cover both (make that RAM a "
                "whole number of GiB)", start, *above, dimms);
        }
    }
    return base;
}

static int self_balloon(void)
{
    uint64_t actual = balloon_actual(), addr, size, move, given, moved;
    uint64_t total0 = 0, total = 0, avail, base, below, above, held;
    int64_t stamp = 0, when;
    bool onlined;
    double until;

    if (our_dimm(&addr, &size)) {
        say("a DIMM of %" PRIu64 " MiB is there already: nothing to do",
            size / MIB);
        return EXIT_OK;
    }
    /*
     * What the balloon holds already counts as below the gap, where this
     * program has it take memory.  Memory of an earlier DIMM that the
     * guest let go after --undo gave up is freed.
     */
    base = ram_split(&below, &above);
    held = actual < base ? base - actual : 0;
    move = decide(below > held ? below - held : 0);
    if (!move) {
        return EXIT_REFUSED;
    }
    memory_del();
    if (!memory_add(move)) {
        return EXIT_HOTADD;
    }
    guest_stats(&total0, &avail, NULL);
    given = inflate(actual, move);
    moved = blocks(given);
    if (moved != move) {
        /* What the guest gave, in whole blocks: a smaller DIMM. */
        memory_del();
        if (!moved) {
            say("less than a block: nothing moves");
            give_back(actual);
            return EXIT_REFUSED;
        }
        if (!memory_add(moved)) {
            give_back(actual);
            return EXIT_HOTADD;
        }
    }
    guest_stats(&total, &avail, &stamp);
    if (!plug()) {
        memory_del();
        give_back(actual);
        return EXIT_HOTADD;
    }
    /* The balloon's target is relative to the RAM, which has grown. */
    balloon_set(actual);
    our_dimm(&addr, &size);
    say("hot-added %" PRIu64 " MiB from %s at gPA 0x%" PRIx64 "%s; the "
        "balloon holds %" PRIu64 " MiB below the gap", moved / MIB,
        opt.mem_path, addr,
        above && addr == above ? ", right after the RAM above "
        "the gap" : "", moved / MIB);
    /*
     * Before the plug, the guest has lost @moved (the balloon let go of
     * the rest); onlined, the DIMM makes it up.  Statistics sent before
     * the plug do not count.
     */
    until = elapsed() + opt.timeout;
    do {
        sleep(1);
        onlined = guest_stats(&total, &avail, &when) && when > stamp &&
                  total + moved / 2 >= total0;
    } while (!onlined && elapsed() < until);
    if (onlined) {
        say("the guest onlined it: it has %" PRIu64 " MiB, %" PRIu64
            " MiB of it at gPA [0x%" PRIx64 ", 0x%" PRIx64 ") from %s",
            balloon_actual() / MIB, moved / MIB, addr, addr + moved,
            opt.mem_path);
    } else {
        say("the guest did not online it in %d s (is its memory hotplug "
            "policy offline?): it is the guest's to online", opt.timeout);
    }
    return EXIT_OK;
}

/* The guest's last ACPI status report (_OST) on the DIMM, as text. */
static const char *ospm_status(void)
{
    static const char device[] = "\"device\": \"" DIMM "\"";
    static char text[128];
    const char *r = qmp("\"execute\": \"query-acpi-ospm-status\"");
    const char *p = r ? strstr(r, device) : NULL;
    char info[1024];
    int64_t source, status;

    snprintf(text, sizeof(text), "no ACPI status from the guest");
    if (p) {
        json_object_at(r, p, info, sizeof(info));
        if (json_int(info, "source", &source) &&
            json_int(info, "status", &status)) {
            snprintf(text, sizeof(text), "the guest's ACPI status for it: "
                     "event %" PRId64 ", status %#" PRIx64, source,
                     (uint64_t)status);
        }
    }
    return text;
}

static int undo(void)
{
    uint64_t base = qmp_int("base-memory", "query-memory-size-summary");
    uint64_t addr, size;
    bool there = our_dimm(&addr, &size);
    double until;

    if (!there) {
        memory_del();
        say("no DIMM to remove; the guest has %" PRIu64 " MiB",
            balloon_actual() / MIB);
        return EXIT_OK;
    }
    /* Room first: the guest must move its pages off the DIMM. */
    give_back(base + size);
    if (!qmp("\"execute\": \"device_del\", \"arguments\": "
             "{\"id\": \"" DIMM "\"}")) {
        die(EXIT_USE, "QMP device_del: %s", error_desc);
    }
    until = elapsed() + opt.timeout;
    while ((there = our_dimm(&addr, &size)) && elapsed() < until) {
        usleep(200 * 1000);
    }
    if (there) {
        /*
         * What the guest keeps stays the guest's, and so does the memory
         * the balloon let go: inflated again, the balloon would take the
         * DIMM's pages (the highest zone), which QEMU cannot give back.
         * If the guest lets go of the DIMM later, the next run of this
         * program frees its memory.
         */
        say("the guest did not release the DIMM in %d s: it stays (%s); "
            "the guest has %" PRIu64 " MiB", opt.timeout, ospm_status(),
            balloon_actual() / MIB);
        return EXIT_REFUSED;
    }
    memory_del();
    say("removed the DIMM; the guest has %" PRIu64 " MiB",
        balloon_actual() / MIB);
    return EXIT_OK;
}

/*
 * --guard: refuse every migration of the VM while QEMU runs.  A VM on the
 * module's memory must not migrate (dseg-kvm.rst, Limits), and QEMU offers
 * no blocker to ask for, so: migration events on, a pause before the
 * switchover that only this program could lift, and migrate_cancel as
 * soon as a migration starts.  The segment leaves the slots that KVM logs
 * meanwhile and covers them again when the logging stops.
 */
static int guard(void)
{
    bool cancelled = false;
    char status[32];

    if (!qmp("\"execute\": \"migrate-set-capabilities\", \"arguments\": "
             "{\"capabilities\": ["
             "{\"capability\": \"events\", \"state\": true}, "
             "{\"capability\": \"pause-before-switchover\", "
             "\"state\": true}]}")) {
        die(EXIT_USE, "QMP migrate-set-capabilities: %s", error_desc);
    }
    say("refusing migrations of this VM");
    while (fgets(reply, sizeof(reply), qmp_in)) {
        if (!strstr(reply, "\"event\": \"MIGRATION\"")) {
            continue;
        }
        json_str(reply, "status", status, sizeof(status));
        if (!strcmp(status, "setup")) {
            cancelled = false;      /* every migration starts so */
        }
        if (!strcmp(status, "cancelled") || !strcmp(status, "failed") ||
            !strcmp(status, "completed")) {
            if (cancelled) {
                say("the migration ended: %s", status);
            }
            cancelled = false;
        } else if (!cancelled && strcmp(status, "cancelling")) {
            if (!qmp("\"execute\": \"migrate_cancel\"")) {
                die(EXIT_USE, "QMP migrate_cancel: %s", error_desc);
            }
            cancelled = true;
            say("refused a migration (%s): its memory is not to move "
                "(dseg-kvm.rst, Limits)", status);
        }
    }
    return EXIT_OK;
}

/* --execute: one QMP command of the user's, and QEMU's reply. */
static int execute(const char *json)
{
    const char *line = qmp_send(json);

    fputs(line, stdout);
    return json_top_key(line, "return") ? EXIT_OK : EXIT_USE;
}

static uint64_t mib_arg(const char *name, const char *s)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-' ||
        v > ((uint64_t)1 << 40) / MIB) {
        die(EXIT_USE, "--%s %s: want a number of MiB", name, s);
    }
    return v * MIB;
}

static int seconds_arg(const char *name, const char *s)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > 86400) {
        die(EXIT_USE, "--%s %s: want seconds, 1 to 86400", name, s);
    }
    return v;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "qmp", required_argument, NULL, 'q' },
        { "balloon", required_argument, NULL, 'b' },
        { "mem-path", required_argument, NULL, 'm' },
        { "block", required_argument, NULL, 'B' },
        { "keep", required_argument, NULL, 'k' },
        { "reserve", required_argument, NULL, 'r' },
        { "wait", required_argument, NULL, 'w' },
        { "timeout", required_argument, NULL, 't' },
        { "undo", no_argument, NULL, 'u' },
        { "guard", no_argument, NULL, 'g' },
        { "execute", required_argument, NULL, 'e' },
        { NULL, 0, NULL, 0 },
    };
    int c;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* A QEMU that goes away is an error to report, not a signal. */
    signal(SIGPIPE, SIG_IGN);
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'q': opt.qmp = optarg; break;
        case 'b': opt.balloon = optarg; break;
        case 'm': opt.mem_path = optarg; break;
        case 'B': opt.block = mib_arg("block", optarg); break;
        case 'k': opt.keep = mib_arg("keep", optarg); break;
        case 'r': opt.reserve = mib_arg("reserve", optarg); break;
        case 'w': opt.wait = seconds_arg("wait", optarg); break;
        case 't': opt.timeout = seconds_arg("timeout", optarg); break;
        case 'u': opt.undo = true; break;
        case 'g': opt.guard = true; break;
        case 'e': opt.execute = optarg; break;
        default:
            die(EXIT_USE, "usage: dseg-selfballoon --qmp PATH [--balloon ID] "
                "[--mem-path PATH] [--block MIB] [--keep MIB] "
                "[--reserve MIB] [--wait S] [--timeout S] "
                "[--undo | --guard | --execute JSON]");
        }
    }
    if (!opt.qmp || optind != argc) {
        die(EXIT_USE, "--qmp PATH is required, and nothing else");
    }
    if (opt.undo + opt.guard + !!opt.execute > 1) {
        die(EXIT_USE, "--undo, --guard and --execute: one at most");
    }
    if (!opt.block || opt.block % (2 * MIB)) {
        die(EXIT_USE, "--block: want a multiple of 2 MiB");
    }
    qmp_connect(opt.qmp);
    if (opt.execute) {
        return execute(opt.execute);
    }
    return opt.undo ? undo() : opt.guard ? guard() : self_balloon();
}
