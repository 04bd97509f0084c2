/* Unit tests for control/placement: health from heartbeats, placement of
 * replicas and always-on services, stability, and hand-over from a dead
 * node to the nearest healthy fog. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "control/placement.h"

#define CLOUD "https://cloud:5000"

static fp_place_node nodes[] = {
    {.id = "edge-1", .role = "edge", .parent = "https://fog-1", .health = FP_HEALTH_HEALTHY},
    {.id = "fog-1",
     .role = "fog",
     .url = "https://fog-1",
     .parent = CLOUD,
     .health = FP_HEALTH_HEALTHY},
    {.id = "fog-2", .role = "fog", .parent = CLOUD, .health = FP_HEALTH_HEALTHY},
    {.id = "fog-3", .role = "fog", .parent = "https://region-b", .health = FP_HEALTH_HEALTHY},
};
#define NNODES (sizeof nodes / sizeof nodes[0])

static void reset_nodes(void)
{
    for (size_t i = 0; i < NNODES; i++) {
        nodes[i].health = FP_HEALTH_HEALTHY;
        nodes[i].capacity = nodes[i].used = 0;
        nodes[i].instances = 0;
        nodes[i].labels = NULL;
        nodes[i].memory = nodes[i].reserved = 0;
    }
}

static fp_place_node *node(const char *id)
{
    for (size_t i = 0; i < NNODES; i++)
        if (!strcmp(nodes[i].id, id)) return &nodes[i];
    fail_msg("no node %s", id);
    return NULL;
}

/* The nodes service is placed on, comma-separated in placement order. */
static const char *where(const fp_placement *pl, size_t n, const char *service, char *buf)
{
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++)
        if (!strcmp(pl[i].service, service)) {
            if (buf[0]) strcat(buf, ",");
            strcat(buf, pl[i].node);
        }
    return buf;
}

static void test_health(void **state)
{
    (void)state;
    assert_int_equal(fp_health_of(0, 100, 3, 6), FP_HEALTH_UNSEEN);
    assert_int_equal(fp_health_of(100, 100, 3, 6), FP_HEALTH_HEALTHY);
    assert_int_equal(fp_health_of(97, 100, 3, 6), FP_HEALTH_HEALTHY); /* exactly 3: not over */
    assert_int_equal(fp_health_of(96, 100, 3, 6), FP_HEALTH_SUSPECT);
    assert_int_equal(fp_health_of(94, 100, 3, 6), FP_HEALTH_SUSPECT);
    assert_int_equal(fp_health_of(93, 100, 3, 6), FP_HEALTH_DEAD);
    assert_string_equal(fp_health_name(FP_HEALTH_SUSPECT), "suspect");
    assert_string_equal(fp_health_name(FP_HEALTH_DEAD), "dead");
}

static void test_static_not_placed(void **state)
{
    (void)state;
    reset_nodes();
    fp_place_service s[] = {
        {.name = "a", .node = "fog-1"},                    /* pinned, not always on */
        {.name = "b", .role = "fog"},                      /* every fog */
        {.name = "c", .role = "fog", .always_on = true},   /* every fog, always */
        {.name = "d", .node = "fog-1", .always_on = true}, /* dynamic */
        {.name = "e", .role = "edge", .replicas = 1},      /* dynamic */
    };
    assert_false(fp_place_dynamic(&s[0]));
    assert_false(fp_place_dynamic(&s[1]));
    assert_false(fp_place_dynamic(&s[2]));
    assert_true(fp_place_dynamic(&s[3]));
    assert_true(fp_place_dynamic(&s[4]));
    fp_placement *pl;
    size_t n;
    char buf[256];
    assert_int_equal(fp_place_compute(s, 5, nodes, NNODES, NULL, 0, &pl, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(where(pl, n, "d", buf), "fog-1");
    assert_string_equal(where(pl, n, "e", buf), "edge-1");
    assert_null(pl[0].from);
    free(pl);
}

static void test_replicas_prefer_room_and_fewer_instances(void **state)
{
    (void)state;
    reset_nodes();
    node("fog-1")->instances = 3;
    node("fog-2")->capacity = 100;
    node("fog-2")->used = 100; /* full */
    fp_place_service s[] = {{.name = "web", .role = "fog", .replicas = 2}};
    fp_placement *pl;
    size_t n;
    char buf[256];
    assert_int_equal(fp_place_compute(s, 1, nodes, NNODES, NULL, 0, &pl, &n), 0);
    /* fog-3 (room, no instances), then fog-1 (room) before the full fog-2 */
    assert_string_equal(where(pl, n, "web", buf), "fog-3,fog-1");
    free(pl);
    /* more replicas than nodes: as many as there are */
    s[0].replicas = 5;
    assert_int_equal(fp_place_compute(s, 1, nodes, NNODES, NULL, 0, &pl, &n), 0);
    assert_int_equal(n, 3);
    free(pl);
    /* suspect and unseen nodes get no new placement */
    node("fog-3")->health = FP_HEALTH_SUSPECT;
    node("fog-2")->health = FP_HEALTH_UNSEEN;
    s[0].replicas = 2;
    assert_int_equal(fp_place_compute(s, 1, nodes, NNODES, NULL, 0, &pl, &n), 0);
    assert_string_equal(where(pl, n, "web", buf), "fog-1");
    free(pl);
}

static void test_stable(void **state)
{
    (void)state;
    reset_nodes();
    node("fog-2")->instances = 9; /* busier, but it runs web: it keeps it */
    node("fog-2")->health = FP_HEALTH_SUSPECT;
    fp_place_service s[] = {{.name = "web", .role = "fog", .replicas = 1, .always_on = true}};
    fp_placement cur[] = {{.service = "web", .node = "fog-2"}};
    fp_placement *pl;
    size_t n;
    char buf[256];
    assert_int_equal(fp_place_compute(s, 1, nodes, NNODES, cur, 1, &pl, &n), 0);
    assert_string_equal(where(pl, n, "web", buf), "fog-2");
    assert_null(pl[0].from);
    free(pl);
    /* a placement on a node no longer joined goes; one on an edge for a
     * fog service too */
    fp_placement gone[] = {{.service = "web", .node = "fog-9"},
                           {.service = "web", .node = "edge-1"}};
    assert_int_equal(fp_place_compute(s, 1, nodes, NNODES, gone, 2, &pl, &n), 0);
    assert_int_equal(n, 1);
    assert_null(pl[0].from);
    assert_string_not_equal(pl[0].node, "fog-2"); /* busiest */
    free(pl);
}

static void test_handover_to_nearest(void **state)
{
    (void)state;
    reset_nodes();
    node("fog-1")->health = FP_HEALTH_DEAD;
    node("fog-3")->instances = 0;
    node("fog-2")->instances = 2; /* busier, but under the same parent as fog-1 */
    fp_place_service s[] = {{.name = "web", .node = "fog-1", .always_on = true}};
    fp_placement cur[] = {{.service = "web", .node = "fog-1"}};
    fp_placement *pl;
    size_t n;
    assert_int_equal(fp_place_compute(s, 1, nodes, NNODES, cur, 1, &pl, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(pl[0].node, "fog-2");
    assert_non_null(pl[0].from);
    assert_string_equal(pl[0].from, "fog-1");
    free(pl);
    /* once moved it stays, also when fog-1 is back */
    node("fog-1")->health = FP_HEALTH_HEALTHY;
    fp_placement moved[] = {{.service = "web", .node = "fog-2"}};
    assert_int_equal(fp_place_compute(s, 1, nodes, NNODES, moved, 1, &pl, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(pl[0].node, "fog-2");
    assert_null(pl[0].from);
    free(pl);
    /* without a healthy fog it stays on the dead node, no hand-over */
    node("fog-1")->health = FP_HEALTH_DEAD;
    node("fog-2")->health = FP_HEALTH_DEAD;
    node("fog-3")->health = FP_HEALTH_SUSPECT;
    assert_int_equal(fp_place_compute(s, 1, nodes, NNODES, cur, 1, &pl, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(pl[0].node, "fog-1");
    assert_null(pl[0].from);
    free(pl);
}

static void test_dead_without_always_on_stays(void **state)
{
    (void)state;
    reset_nodes();
    node("fog-1")->health = FP_HEALTH_DEAD;
    fp_place_service s[] = {{.name = "batch", .role = "fog", .replicas = 1}};
    fp_placement cur[] = {{.service = "batch", .node = "fog-1"}};
    fp_placement *pl;
    size_t n;
    assert_int_equal(fp_place_compute(s, 1, nodes, NNODES, cur, 1, &pl, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(pl[0].node, "fog-1");
    assert_null(pl[0].from);
    free(pl);
}

static void test_replicas_handover_spreads(void **state)
{
    (void)state;
    reset_nodes();
    node("fog-1")->health = FP_HEALTH_DEAD;
    fp_place_service s[] = {{.name = "web", .role = "fog", .replicas = 2, .always_on = true}};
    fp_placement cur[] = {{.service = "web", .node = "fog-1"}, {.service = "web", .node = "fog-2"}};
    fp_placement *pl;
    size_t n;
    char buf[256];
    /* fog-2 holds one already: the copy from fog-1 goes to fog-3 */
    assert_int_equal(fp_place_compute(s, 1, nodes, NNODES, cur, 2, &pl, &n), 0);
    assert_string_equal(where(pl, n, "web", buf), "fog-2,fog-3");
    assert_null(pl[0].from);
    assert_string_equal(pl[1].from, "fog-1");
    free(pl);
}

static void test_pinned_first_placement_on_dead_node(void **state)
{
    (void)state;
    reset_nodes();
    node("fog-3")->health = FP_HEALTH_DEAD;
    fp_place_service s[] = {{.name = "web", .node = "fog-3", .always_on = true},
                            {.name = "later", .node = "fog-7", .always_on = true}};
    fp_placement *pl;
    size_t n;
    assert_int_equal(fp_place_compute(s, 2, nodes, NNODES, NULL, 0, &pl, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(pl[0].service, "web");
    assert_string_not_equal(pl[0].node, "fog-3");
    assert_string_equal(pl[0].from, "fog-3");
    /* a node that has not joined yet keeps the placement: it will */
    assert_string_equal(pl[1].node, "fog-7");
    assert_null(pl[1].from);
    free(pl);
}

static void test_labels_match(void **state)
{
    (void)state;
    assert_true(fp_labels_match("zone=north,gpu=no", "zone=north"));
    assert_true(fp_labels_match("zone=north,gpu=no", "gpu=no,zone=north"));
    assert_true(fp_labels_match("zone=north", ""));
    assert_true(fp_labels_match(NULL, NULL));
    assert_false(fp_labels_match("zone=north,gpu=no", "zone=south"));
    assert_false(fp_labels_match("zone=northern", "zone=north"));      /* whole pairs only */
    assert_false(fp_labels_match("zone=north", "zone=north,gpu=yes")); /* all must match */
    assert_false(fp_labels_match(NULL, "zone=north"));
}

static void test_labels_select_nodes(void **state)
{
    (void)state;
    reset_nodes();
    node("fog-1")->labels = "zone=north";
    node("fog-2")->labels = "zone=south,gpu=yes";
    node("fog-3")->labels = "zone=north,gpu=yes";
    node("fog-3")->health = FP_HEALTH_SUSPECT;
    fp_place_service s[] = {
        {.name = "all-north", .role = "fog", .labels = "zone=north"}, /* every match */
        {.name = "one-gpu", .role = "fog", .labels = "gpu=yes", .replicas = 2},
        {.name = "nowhere", .role = "fog", .labels = "zone=east", .replicas = 1},
    };
    assert_true(fp_place_dynamic(&s[0]));
    fp_placement *pl;
    size_t n;
    char buf[256];
    assert_int_equal(fp_place_compute(s, 3, nodes, NNODES, NULL, 0, &pl, &n), 0);
    /* like a static definition: every matching node, whatever its health */
    assert_string_equal(where(pl, n, "all-north", buf), "fog-1,fog-3");
    /* replicas go to healthy matching nodes only: fog-3 is suspect */
    assert_string_equal(where(pl, n, "one-gpu", buf), "fog-2");
    assert_string_equal(where(pl, n, "nowhere", buf), "");
    free(pl);
    /* a node whose labels changed loses the placement */
    fp_placement cur[] = {{.service = "one-gpu", .node = "fog-1"}};
    assert_int_equal(fp_place_compute(&s[1], 1, nodes, NNODES, cur, 1, &pl, &n), 0);
    assert_string_equal(where(pl, n, "one-gpu", buf), "fog-2");
    free(pl);
}

static void test_handover_respects_labels(void **state)
{
    (void)state;
    reset_nodes();
    node("fog-1")->health = FP_HEALTH_DEAD;
    node("fog-1")->labels = "zone=north";
    node("fog-2")->labels = "zone=south"; /* nearer, but the wrong zone */
    node("fog-3")->labels = "zone=north";
    fp_place_service s[] = {
        {.name = "web", .node = "fog-1", .always_on = true, .labels = "zone=north"}};
    fp_placement cur[] = {{.service = "web", .node = "fog-1"}};
    fp_placement *pl;
    size_t n;
    assert_int_equal(fp_place_compute(s, 1, nodes, NNODES, cur, 1, &pl, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(pl[0].node, "fog-3");
    assert_string_equal(pl[0].from, "fog-1");
    free(pl);
    /* no matching healthy fog: it stays where it was */
    node("fog-3")->labels = "zone=south";
    assert_int_equal(fp_place_compute(s, 1, nodes, NNODES, cur, 1, &pl, &n), 0);
    assert_string_equal(pl[0].node, "fog-1");
    assert_null(pl[0].from);
    free(pl);
}

static void test_distance(void **state)
{
    (void)state;
    reset_nodes();
    /* edge-1 under fog-1 under the cloud; fog-2 under the cloud; fog-3
     * under a parent the directory does not know */
    assert_int_equal(fp_place_distance(nodes, NNODES, "fog-1", "fog-1"), 0);
    assert_int_equal(fp_place_distance(nodes, NNODES, "fog-1", "edge-1"), 1);
    assert_int_equal(fp_place_distance(nodes, NNODES, "fog-2", "edge-1"), 3);
    assert_int_equal(fp_place_distance(nodes, NNODES, "fog-2", "fog-1"), 2);
    assert_int_equal(fp_place_distance(nodes, NNODES, "fog-3", "edge-1"), FP_PLACE_FAR);
}

static void test_preferences(void **state)
{
    (void)state;
    reset_nodes();
    node("fog-1")->instances = 5; /* busiest, but nearest edge-1 */
    fp_place_service s[] = {{.name = "near", .role = "fog", .replicas = 1, .near = "edge-1"}};
    fp_placement *pl;
    size_t n;
    char buf[256];
    assert_int_equal(fp_place_compute(s, 1, nodes, NNODES, NULL, 0, &pl, &n), 0);
    assert_string_equal(where(pl, n, "near", buf), "fog-1");
    free(pl);
    /* a preferred label comes before nearness; without a match, the rest
     * decides */
    node("fog-2")->labels = "ssd=yes";
    s[0].prefer_label = "ssd=yes";
    assert_int_equal(fp_place_compute(s, 1, nodes, NNODES, NULL, 0, &pl, &n), 0);
    assert_string_equal(where(pl, n, "near", buf), "fog-2");
    free(pl);
    s[0].prefer_label = "ssd=no";
    assert_int_equal(fp_place_compute(s, 1, nodes, NNODES, NULL, 0, &pl, &n), 0);
    assert_string_equal(where(pl, n, "near", buf), "fog-1");
    free(pl);
    /* a preference moves nothing that runs */
    fp_placement cur[] = {{.service = "near", .node = "fog-3"}};
    assert_int_equal(fp_place_compute(s, 1, nodes, NNODES, cur, 1, &pl, &n), 0);
    assert_string_equal(where(pl, n, "near", buf), "fog-3");
    free(pl);
}

static void test_memory_capacity(void **state)
{
    (void)state;
    reset_nodes();
    node("fog-1")->memory = 1000;
    node("fog-1")->reserved = 900;
    node("fog-2")->memory = 1000;
    node("fog-3")->memory = 0; /* unknown: fits */
    node("fog-3")->instances = 4;
    fp_place_service s[] = {{.name = "big", .role = "fog", .replicas = 3, .memory = 600}};
    fp_placement *pl;
    size_t n;
    char buf[256];
    assert_int_equal(fp_place_compute(s, 1, nodes, NNODES, NULL, 0, &pl, &n), 0);
    /* fog-1 has 100 left; fog-2 takes one (and then has 400 left) */
    assert_string_equal(where(pl, n, "big", buf), "fog-2,fog-3");
    free(pl);
    assert_false(fp_place_eligible(&s[0], node("fog-1")));
    assert_true(fp_place_eligible(&s[0], node("fog-2")));
    assert_false(fp_place_eligible(&s[0], node("edge-1")));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health),
        cmocka_unit_test(test_static_not_placed),
        cmocka_unit_test(test_replicas_prefer_room_and_fewer_instances),
        cmocka_unit_test(test_stable),
        cmocka_unit_test(test_handover_to_nearest),
        cmocka_unit_test(test_dead_without_always_on_stays),
        cmocka_unit_test(test_replicas_handover_spreads),
        cmocka_unit_test(test_pinned_first_placement_on_dead_node),
        cmocka_unit_test(test_labels_match),
        cmocka_unit_test(test_labels_select_nodes),
        cmocka_unit_test(test_handover_respects_labels),
        cmocka_unit_test(test_distance),
        cmocka_unit_test(test_preferences),
        cmocka_unit_test(test_memory_capacity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
