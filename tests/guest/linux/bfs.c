/*
 * bfs: breadth-first searches of a Kronecker graph, after the Graph500
 * benchmark's specification (kernels 1 and 2 and its validation), with the
 * graph in a primary region or in ordinary memory.
 *
 * Usage: bfs [--region] [--window] [MIB [SEARCHES [SEED]]]
 *   MIB       the table: the largest graph whose edge list, compressed
 *             rows and search arrays fit in it (default 64)
 *   SEARCHES  searches in the window, each from a root drawn at random
 *             among the vertices with an edge (default 2)
 *   SEED      xorshift64* seed, non-zero (default 1)
 *   --region, --window  as for gups
 *
 * The graph has 2^SCALE vertices and 16 * 2^SCALE edges, each drawn by
 * descending SCALE levels of the 2x2 initiator A = 0.57, B = 0.19,
 * C = 0.19, D = 0.05, and its vertices are then numbered in a random
 * order.  Each search is a level-synchronous top-down BFS that leaves a
 * parent array.  After the window every search is run again and its tree
 * validated against the edge list as Graph500 prescribes: the parents form
 * a tree rooted at the root, every tree edge is an edge of the graph, the
 * two ends of every edge are both in the tree or both out of it and their
 * levels differ by at most one; and the window's search visited as many
 * vertices, reached the same depth and scanned as many edges.
 *
 * Prints "BFS mib M searches N seed S table region|anon checksum 0x...
 * scale K vertices V edges E traversed T", where the checksum mixes each
 * search's root, vertices visited, depth and edges scanned (the same for
 * any correct BFS) and T is the edges of the searched components, summed
 * over the searches; or "BFS-FAIL ..." and exit status 1.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sparse.h"
#include "table.h"

/* Graph500's edge factor: edges per vertex. */
#define EDGE_FACTOR     16
/* Its initiator's A, A + B and A + B + C, in 16-bit fixed point. */
#define KRON_A          ((57u << 16) / 100)
#define KRON_AB         ((76u << 16) / 100)
#define KRON_ABC        ((95u << 16) / 100)
#define MIN_SCALE       4
#define MAX_SCALE       31
/* Not a vertex: a parent not set, a level not known. */
#define NONE            UINT32_MAX
/* A level's mark: the vertex's edge to its parent is in the edge list. */
#define TREE_EDGE_SEEN  (1u << 31)

struct graph {
    unsigned scale;
    uint64_t n, m;
    uint32_t (*pairs)[2];
    struct sparse rows;
    uint32_t *parent, *queue;
};

/* What one search found. */
struct search {
    uint32_t root, depth;
    uint64_t visited, edges;
};

/* The table's bytes for a graph of 2^SCALE vertices. */
static uint64_t graph_bytes(unsigned scale)
{
    uint64_t n = 1ull << scale, m = EDGE_FACTOR * n;

    return table_round(m * 8) + table_round((n + 1) * 8) +
           table_round(sparse_max_entries(m) * 4) +
           2 * table_round(n * 4);
}

static void graph_carve(struct graph *g, char *t, unsigned scale)
{
    g->scale = scale;
    g->n = 1ull << scale;
    g->m = EDGE_FACTOR * g->n;
    g->pairs = table_carve(&t, g->m * 8);
    g->rows.n = g->n;
    g->rows.start = table_carve(&t, (g->n + 1) * 8);
    g->rows.col = table_carve(&t, sparse_max_entries(g->m) * 4);
    g->rows.val = NULL;
    g->parent = table_carve(&t, g->n * 4);
    g->queue = table_carve(&t, g->n * 4);
}

/* Graph500's kernel 0: the edge list, its vertices in a random order. */
static void kronecker(struct graph *g, uint64_t *seed)
{
    uint32_t *perm = g->parent;

    for (uint64_t k = 0; k < g->m; k++) {
        uint32_t u = 0, v = 0;
        uint64_t r = 0;

        for (unsigned level = 0; level < g->scale; level++) {
            uint32_t q;

            if (level % 4 == 0) {
                r = xorshift64star(seed);
            }
            q = r & 0xffff;
            r >>= 16;
            u <<= 1;
            v <<= 1;
            if (q >= KRON_AB) {
                u |= 1;
            }
            if ((q >= KRON_A && q < KRON_AB) || q >= KRON_ABC) {
                v |= 1;
            }
        }
        g->pairs[k][0] = u;
        g->pairs[k][1] = v;
    }
    for (uint64_t i = 0; i < g->n; i++) {
        perm[i] = i;
    }
    for (uint64_t i = g->n; i-- > 1;) {
        uint64_t j = xorshift64star(seed) % (i + 1);
        uint32_t x = perm[i];

        perm[i] = perm[j];
        perm[j] = x;
    }
    for (uint64_t k = 0; k < g->m; k++) {
        g->pairs[k][0] = perm[g->pairs[k][0]];
        g->pairs[k][1] = perm[g->pairs[k][1]];
    }
}

/* Graph500's kernel 2: a BFS from ROOT, leaving g->parent. */
static void bfs(const struct graph *g, uint32_t root, struct search *s)
{
    const uint64_t *start = g->rows.start;
    const uint32_t *col = g->rows.col;
    uint32_t *parent = g->parent, *queue = g->queue;
    uint64_t head = 0, tail = 1, level_end = 1, edges = 0;
    uint32_t depth = 0;

    for (uint64_t i = 0; i < g->n; i++) {
        parent[i] = NONE;
    }
    parent[root] = root;
    queue[0] = root;
    while (head < tail) {
        uint32_t u;

        if (head == level_end) {
            depth++;
            level_end = tail;
        }
        u = queue[head++];
        for (uint64_t e = start[u]; e < start[u + 1]; e++) {
            uint32_t v = col[e];

            edges++;
            if (parent[v] == NONE) {
                parent[v] = u;
                queue[tail++] = v;
            }
        }
    }
    s->root = root;
    s->depth = depth;
    s->visited = tail;
    s->edges = edges / 2;
}

/*
 * Validate g->parent, the tree of the search S, against the edge list;
 * NULL, or what is wrong.  Uses g->queue for the levels.
 */
static const char *validate(const struct graph *g, const struct search *s)
{
    const uint32_t *parent = g->parent;
    uint32_t *level = g->queue, depth = 0;
    uint64_t visited = 0, edges = 0;

    if (parent[s->root] != s->root) {
        return "the root is not its own parent";
    }
    for (uint64_t i = 0; i < g->n; i++) {
        level[i] = NONE;
    }
    level[s->root] = 0;
    for (uint64_t v = 0; v < g->n; v++) {
        uint64_t d = 0;
        uint32_t u = v, lv;

        if (parent[v] == NONE) {
            continue;
        }
        visited++;
        while (level[u] == NONE) {
            u = parent[u];
            if (u >= g->n || parent[u] == NONE) {
                return "a parent is not in the tree";
            }
            if (++d > g->n) {
                return "the parents form a cycle";
            }
        }
        lv = level[u] + d;
        depth = lv > depth ? lv : depth;
        for (u = v; level[u] == NONE; u = parent[u]) {
            level[u] = lv--;
        }
    }
    for (uint64_t k = 0; k < g->m; k++) {
        uint32_t u = g->pairs[k][0], v = g->pairs[k][1];
        uint32_t lu = level[u] & ~TREE_EDGE_SEEN;
        uint32_t lv = level[v] & ~TREE_EDGE_SEEN;

        if (u == v) {
            continue;
        }
        if ((level[u] == NONE) != (level[v] == NONE)) {
            return "an edge leaves the searched component";
        }
        if (level[u] == NONE) {
            continue;
        }
        if (lu > lv + 1 || lv > lu + 1) {
            return "an edge joins levels more than one apart";
        }
        edges++;
        if (parent[v] == u) {
            level[v] |= TREE_EDGE_SEEN;
        }
        if (parent[u] == v) {
            level[u] |= TREE_EDGE_SEEN;
        }
    }
    for (uint64_t v = 0; v < g->n; v++) {
        if (parent[v] != NONE && v != s->root &&
            !(level[v] & TREE_EDGE_SEEN)) {
            return "a tree edge is not an edge of the graph";
        }
    }
    if (visited != s->visited || depth != s->depth || edges != s->edges) {
        return "the window's search differs from the validated one";
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int region = 0, window = 0;
    uint64_t args[3] = { 64, 2, 1 };
    unsigned scale = MIN_SCALE;
    uint64_t searches, seed, sum = TABLE_MIX_START, traversed = 0;
    struct search *s;
    struct graph g;
    char *t;

    table_args(argc, argv, &region, &window, args);
    searches = args[1];
    seed = args[2];
    while (scale < MAX_SCALE && graph_bytes(scale + 1) <= args[0] << 20) {
        scale++;
    }
    if (!seed || !searches || graph_bytes(scale) > args[0] << 20) {
        printf("BFS-FAIL arguments: the seed and searches must be non-zero "
               "and the table at least %" PRIu64 " bytes\n",
               graph_bytes(MIN_SCALE));
        return 1;
    }
    s = calloc(searches, sizeof(*s));
    t = (char *)table_alloc(graph_bytes(scale), region);
    if (!s || !t) {
        printf("BFS-FAIL table: %s\n", strerror(errno));
        return 1;
    }
    graph_carve(&g, t, scale);
    kronecker(&g, &seed);
    sparse_build(&g.rows, (const uint32_t (*)[2])g.pairs, NULL, g.m);
    for (uint64_t i = 0; i < searches; i++) {
        uint64_t tries = 0;
        uint32_t v;

        do {
            v = xorshift64star(&seed) % g.n;
        } while (g.rows.start[v] == g.rows.start[v + 1] &&
                 ++tries < 64 * g.n);
        s[i].root = v;
    }
    if (table_window_start(window, "BFS")) {
        return 1;
    }
    for (uint64_t i = 0; i < searches; i++) {
        bfs(&g, s[i].root, &s[i]);
    }
    table_window_end(window);
    for (uint64_t i = 0; i < searches; i++) {
        struct search rerun;    /* validate() checks s[i] itself */
        const char *why;

        bfs(&g, s[i].root, &rerun);     /* the search's tree, again */
        why = validate(&g, &s[i]);
        if (why) {
            printf("BFS-FAIL search %" PRIu64 " from %" PRIu32 ": %s\n",
                   i, s[i].root, why);
            return 1;
        }
        sum = table_mix(table_mix(table_mix(table_mix(sum, s[i].root),
                                            s[i].visited), s[i].depth),
                        s[i].edges);
        traversed += s[i].edges;
    }
    printf("BFS mib %" PRIu64 " searches %" PRIu64 " seed %" PRIu64
           " table %s checksum 0x%016" PRIx64 " scale %u vertices %" PRIu64
           " edges %" PRIu64 " traversed %" PRIu64 "\n", args[0], searches,
           args[2], region ? "region" : "anon", sum, scale, g.n, g.m,
           traversed);
    return 0;
}
