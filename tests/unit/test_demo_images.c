/* Unit tests for cli/demo_images: the paper's service images are
 * reproducible (two builds, the same manifest digests), their layers hold
 * relative paths only, owned by root, and busybox is an executable file. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "cli/demo_images.h"
#include "core/fs.h"

static const char *busybox(void)
{
    return access("/bin/busybox", R_OK) == 0 ? "/bin/busybox" : NULL;
}

static void test_reproducible(void **state)
{
    (void)state;
    if (!busybox()) skip();
    fp_demo_images a, b;
    fp_error err;
    assert_int_equal(fp_demo_images_build(&a, NULL, &err), 0);
    assert_int_equal(fp_demo_images_build(&b, NULL, &err), 0);
    for (size_t i = 0; i < FP_DEMO_IMAGES; i++) {
        assert_string_equal(a.image[i].manifest.digest, b.image[i].manifest.digest);
        assert_string_equal(a.image[i].config.digest, b.image[i].config.digest);
        /* the digest is the manifest's */
        char d[FP_DIGEST_MAX];
        fp_digest_bytes(FP_SHA256, a.image[i].manifest.data.data, a.image[i].manifest.data.len, d);
        assert_string_equal(d, a.image[i].manifest.digest);
        /* every image on the same base layer, its own layer different */
        assert_ptr_equal(a.image[i].layers[0], &a.base);
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal(a.image[i].layers[1]->digest, a.image[k].layers[1]->digest);
    }
    assert_string_equal(a.image[0].repo, "iot_service");
    assert_string_equal(a.image[1].repo, "monitoring_service");
    assert_string_equal(a.image[2].repo, "web_service");
    assert_string_equal(a.image[2].tag, "latest");
    fp_demo_images_free(&a);
    fp_demo_images_free(&b);
}

static unsigned long octal(const unsigned char *f, size_t n)
{
    char tmp[16] = {0};
    memcpy(tmp, f, n < sizeof tmp - 1 ? n : sizeof tmp - 1);
    return strtoul(tmp, NULL, 8);
}

static void test_base_layer(void **state)
{
    (void)state;
    if (!busybox()) skip();
    fp_demo_images imgs;
    fp_error err;
    assert_int_equal(fp_demo_images_build(&imgs, NULL, &err), 0);
    /* gunzip the base layer */
    size_t cap = 64u << 20;
    unsigned char *tar = malloc(cap);
    assert_non_null(tar);
    z_stream z = {0};
    assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = (Bytef *)imgs.base.data.data;
    z.avail_in = (uInt)imgs.base.data.len;
    z.next_out = tar;
    z.avail_out = (uInt)cap;
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    size_t len = z.total_out;
    inflateEnd(&z);
    bool saw_busybox = false, saw_httpd = false;
    size_t entries = 0;
    for (size_t off = 0; off + 512 <= len && tar[off];) {
        const unsigned char *h = tar + off;
        char name[101] = {0};
        memcpy(name, h, 100);
        assert_true(name[0] != '/');
        assert_null(strstr(name, ".."));
        assert_int_equal(octal(h + 108, 8), 0); /* uid */
        assert_int_equal(octal(h + 116, 8), 0); /* gid */
        assert_int_equal(octal(h + 136, 12), 1704067200UL);
        unsigned long size = octal(h + 124, 12);
        if (!strcmp(name, "bin/busybox")) {
            saw_busybox = true;
            assert_int_equal(h[156], '0');
            assert_true(octal(h + 100, 8) & 0111);
            assert_true(size > 100000);
            /* the file itself: an ELF */
            assert_memory_equal(h + 512, "\177ELF", 4);
        }
        if (!strcmp(name, "bin/httpd")) {
            saw_httpd = true;
            assert_int_equal(h[156], '2');
            assert_string_equal((const char *)h + 157, "busybox"); /* relative */
        }
        entries++;
        off += 512 + (size + 511) / 512 * 512;
    }
    assert_true(saw_busybox && saw_httpd && entries > 20);
    /* the config names the uncompressed tar's digest as the layer's diff_id */
    char diff[FP_DIGEST_MAX];
    fp_digest_bytes(FP_SHA256, tar, len, diff);
    json_t *cfg = json_loads(imgs.image[2].config.data.data, 0, NULL);
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(json_object_get(cfg, "rootfs"), "diff_ids"), 0)),
                        diff);
    json_decref(cfg);
    free(tar);
    fp_demo_images_free(&imgs);
}

static void test_layout(void **state)
{
    (void)state;
    if (!busybox()) skip();
    char dir[] = "/tmp/fp-demo-images-XXXXXX";
    assert_non_null(mkdtemp(dir));
    fp_demo_images imgs;
    fp_error err;
    assert_int_equal(fp_demo_images_build(&imgs, NULL, &err), 0);
    assert_int_equal(fp_demo_images_write_layout(&imgs, dir, &err), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/index.json", dir);
    json_t *index = json_load_file(path, 0, NULL);
    assert_non_null(index);
    json_t *m = json_object_get(index, "manifests");
    assert_int_equal(json_array_size(m), FP_DEMO_IMAGES);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(json_array_get(m, 2), "annotations"),
                                          "org.opencontainers.image.ref.name")),
        "web_service:latest");
    for (size_t i = 0; i < FP_DEMO_IMAGES; i++) {
        const char *d = json_string_value(json_object_get(json_array_get(m, i), "digest"));
        assert_string_equal(d, imgs.image[i].manifest.digest);
        snprintf(path, sizeof path, "%s/blobs/sha256/%s", dir, d + 7);
        assert_int_equal(access(path, R_OK), 0);
    }
    json_decref(index);
    fp_demo_images_free(&imgs);
    fp_rm_rf(dir);
}

static void test_dynamic_busybox_refused(void **state)
{
    (void)state;
    if (access("/bin/ls", R_OK) != 0) skip();
    fp_demo_images imgs;
    fp_error err;
    assert_int_equal(fp_demo_images_build(&imgs, "/bin/ls", &err), -1);
    assert_non_null(strstr(err.msg, "dynamically linked"));
    assert_int_equal(fp_demo_images_build(&imgs, "/nonexistent/busybox", &err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reproducible),
        cmocka_unit_test(test_base_layer),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_dynamic_busybox_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
