/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * CUnit tests of cnode/compile.c: ewp_compile_run in the calling thread,
 * and the worker threads driven from a libev loop (submit, done callbacks in
 * order, one owner at a time, shutdown freeing what is left).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/CUnit.h>
#include <ev.h>
#include <pcap/pcap.h>

#include "compile.h"

int ewp_compile_suite_init(void);
int ewp_compile_suite_clean(void);

static struct ev_loop *loop;

int
ewp_compile_suite_init(void)
{
    loop = ev_loop_new(EVFLAG_AUTO);
    return loop != NULL ? 0 : -1;
}

int
ewp_compile_suite_clean(void)
{
    if (loop != NULL)
        ev_loop_destroy(loop);
    loop = NULL;
    return 0;
}

/* A job as filter.c makes them: calloc'd, texts strdup'd */
static struct ewp_compile_job *
job_new(const char *text, const char *fallback, int linktype)
{
    struct ewp_compile_job *job = calloc(1, sizeof(*job));

    if (job == NULL)
        return NULL;
    job->text = strdup(text);
    job->fallback = fallback != NULL ? strdup(fallback) : NULL;
    job->optimize = 1;
    job->netmask = PCAP_NETMASK_UNKNOWN;
    job->linktype = linktype;
    job->snaplen = 65535;
    return job;
}

static void
test_run_compiles_in_the_calling_thread(void)
{
    struct ewp_compile_job *job;

    job = job_new("udp port 53", NULL, DLT_EN10MB);
    CU_ASSERT_FATAL(job != NULL);
    CU_ASSERT(ewp_compile_run(job) == 0);
    CU_ASSERT(job->ok == 1);
    CU_ASSERT(job->prog.bf_len > 0 && job->prog.bf_insns != NULL);
    ewp_compile_free(job);

    /* an empty filter accepts everything */
    job = job_new("", NULL, DLT_EN10MB);
    CU_ASSERT_FATAL(job != NULL);
    CU_ASSERT(ewp_compile_run(job) == 0 && job->ok == 1 && job->prog.bf_len >= 1);
    ewp_compile_free(job);
}

static void
test_run_gives_the_pcap_error_of_a_bad_filter(void)
{
    struct ewp_compile_job *job;

    job = job_new("no such thing", NULL, DLT_EN10MB);
    CU_ASSERT_FATAL(job != NULL);
    CU_ASSERT(ewp_compile_run(job) == -1);
    CU_ASSERT(job->ok == 0);
    CU_ASSERT(job->errbuf[0] != '\0');
    ewp_compile_free(job);

    /* the link type is the handle's: no Ethernet header on DLT_RAW */
    job = job_new("ether host 02:00:00:00:00:01", NULL, DLT_RAW);
    CU_ASSERT_FATAL(job != NULL);
    CU_ASSERT(ewp_compile_run(job) == -1 && job->ok == 0 && job->errbuf[0] != '\0');
    ewp_compile_free(job);
    job = job_new("ether host 02:00:00:00:00:01", NULL, DLT_EN10MB);
    CU_ASSERT_FATAL(job != NULL);
    CU_ASSERT(ewp_compile_run(job) == 0 && job->ok == 1);
    ewp_compile_free(job);

    /* and so is the netmask */
    job = job_new("ip broadcast", NULL, DLT_EN10MB);
    CU_ASSERT_FATAL(job != NULL);
    CU_ASSERT(ewp_compile_run(job) == -1 && job->ok == 0);
    job->netmask = 0xffffff00U;
    job->errbuf[0] = '\0';
    CU_ASSERT(ewp_compile_run(job) == 0 && job->ok == 1);
    ewp_compile_free(job);
}

static void
test_run_falls_back_when_the_first_text_fails(void)
{
    struct ewp_compile_job *job;

    job = job_new("no such thing", "tcp", DLT_EN10MB);
    CU_ASSERT_FATAL(job != NULL);
    CU_ASSERT(ewp_compile_run(job) == 0);
    CU_ASSERT(job->ok == 1 && job->prog.bf_len > 0);
    ewp_compile_free(job);

    job = job_new("no such thing", "nor this", DLT_EN10MB);
    CU_ASSERT_FATAL(job != NULL);
    CU_ASSERT(ewp_compile_run(job) == -1);
    CU_ASSERT(job->ok == 0 && job->errbuf[0] != '\0');
    ewp_compile_free(job);

    /* the fallback is not used when the first text compiles */
    job = job_new("udp", "no such thing", DLT_EN10MB);
    CU_ASSERT_FATAL(job != NULL);
    CU_ASSERT(ewp_compile_run(job) == 0 && job->ok == 1);
    ewp_compile_free(job);
}

/* ---- the worker ---- */

#define N_JOBS 4

static int done_order[N_JOBS + 4];
static int done_ok[N_JOBS + 4];
static int done_count;
static int discard_count;
static int ctx_marker; /* the ctx every callback must get */
static int ctx_wrong;  /* callbacks that got another */

static void
discard_job(void *ctx, struct ewp_compile_job *job)
{
    (void)job;
    ctx_wrong += ctx != &ctx_marker;
    discard_count++;
}

static void
done_cb(void *ctx, struct ewp_compile_job *job)
{
    int n = (int)(long)job->data;

    ctx_wrong += ctx != &ctx_marker;
    if (done_count < (int)(sizeof(done_order) / sizeof(done_order[0]))) {
        done_order[done_count] = n;
        done_ok[done_count] = job->ok;
    }
    done_count++;
    ewp_compile_free(job);
}

static void
on_timeout(struct ev_loop *lp, ev_timer *w, int revents)
{
    (void)revents;
    *(int *)w->data = 1;
    ev_break(lp, EVBREAK_ALL);
}

static void
test_worker_compiles_and_calls_back_in_order(void)
{
    static const char *const texts[N_JOBS] = {"udp", "no such thing", "tcp port 80",
                                              "arp or rarp"};
    struct ewp_compiler *cc;
    ev_timer timer;
    int n, timed_out = 0;

    done_count = 0;
    discard_count = 0;
    ctx_wrong = 0;
    cc = ewp_compile_new(loop, done_cb, &ctx_marker);
    CU_ASSERT_FATAL(cc != NULL);
    for (n = 0; n < N_JOBS; n++) {
        struct ewp_compile_job *job = job_new(texts[n], NULL, DLT_EN10MB);

        CU_ASSERT_FATAL(job != NULL);
        job->data = (void *)(long)n;
        ewp_compile_submit(cc, job);
    }
    ev_timer_init(&timer, on_timeout, 20.0, 0.0);
    timer.data = &timed_out;
    ev_timer_start(loop, &timer);
    while (done_count < N_JOBS && !timed_out)
        ev_run(loop, EVRUN_ONCE);
    ev_timer_stop(loop, &timer);

    CU_ASSERT(timed_out == 0);
    CU_ASSERT(done_count == N_JOBS);
    for (n = 0; n < N_JOBS && n < done_count; n++) {
        CU_ASSERT(done_order[n] == n);
        CU_ASSERT(done_ok[n] == (n != 1));
    }

    /* jobs still queued at shutdown are freed without their callback */
    for (n = 0; n < 3; n++) {
        struct ewp_compile_job *job = job_new("udp or tcp or icmp", NULL, DLT_EN10MB);

        CU_ASSERT_FATAL(job != NULL);
        job->data = (void *)(long)(N_JOBS + n);
        ewp_compile_submit(cc, job);
    }
    ewp_compile_shutdown(cc, discard_job, EWP_COMPILE_WAIT);
    CU_ASSERT(done_count == N_JOBS);
    CU_ASSERT(discard_count == 3);
    CU_ASSERT(ctx_wrong == 0);
    ewp_compile_shutdown(NULL, discard_job, EWP_COMPILE_WAIT); /* none: nothing */
    ev_run(loop, EVRUN_NOWAIT);
    CU_ASSERT(done_count == N_JOBS);
}

/* A slow job of owner A, then a quick one of A and a quick one of B: B's
 * runs beside the slow one (two workers), A's waits for it (one owner, one
 * job at a time, in order). */
static void
test_one_owner_at_a_time_others_beside(void)
{
    static const char a = 'A', b = 'B';
    struct ewp_compile_job *job;
    ev_timer timer;
    struct ewp_compiler *cc;
    char *big, *q;
    int n, timed_out = 0;

    big = malloc(12000 * 7 + 3);
    CU_ASSERT_FATAL(big != NULL);
    for (q = big, n = 0; n < 12000; n++, q += 7)
        memcpy(q, "ip and ", 7);
    memcpy(q, "ip", 3);

    done_count = 0;
    discard_count = 0;
    cc = ewp_compile_new(loop, done_cb, &ctx_marker);
    CU_ASSERT_FATAL(cc != NULL);
    job = job_new(big, NULL, DLT_EN10MB);
    free(big);
    CU_ASSERT_FATAL(job != NULL);
    job->owner = &a;
    job->data = (void *)1L;
    ewp_compile_submit(cc, job);
    job = job_new("udp", NULL, DLT_EN10MB);
    CU_ASSERT_FATAL(job != NULL);
    job->owner = &a;
    job->data = (void *)2L;
    ewp_compile_submit(cc, job);
    job = job_new("tcp", NULL, DLT_EN10MB);
    CU_ASSERT_FATAL(job != NULL);
    job->owner = &b;
    job->data = (void *)3L;
    ewp_compile_submit(cc, job);

    ev_timer_init(&timer, on_timeout, 120.0, 0.0);
    timer.data = &timed_out;
    ev_timer_start(loop, &timer);
    while (done_count < 3 && !timed_out)
        ev_run(loop, EVRUN_ONCE);
    ev_timer_stop(loop, &timer);
    ewp_compile_shutdown(cc, discard_job, EWP_COMPILE_WAIT);

    CU_ASSERT(timed_out == 0);
    CU_ASSERT_FATAL(done_count == 3);
    CU_ASSERT(done_order[0] == 3);
    CU_ASSERT(done_order[1] == 1);
    CU_ASSERT(done_order[2] == 2);
    CU_ASSERT(done_ok[0] == 1 && done_ok[1] == 1 && done_ok[2] == 1);
    CU_ASSERT(discard_count == 0);
}

/* ---- a shared pcap_t (pcapshare.c) ---- */

/* A job with a share compiles against the shared handle (its link type
 * and snaplen), whatever linktype/snaplen say */
static void
test_share_is_what_the_job_compiles_against(void)
{
    pcap_t *p = pcap_open_dead(DLT_EN10MB, 100);
    struct ewp_pcapshare *s;
    struct ewp_compile_job *job;
    unsigned i;
    int ret100 = 0;

    CU_ASSERT_FATAL(p != NULL);
    s = ewp_pcapshare_new(p);
    CU_ASSERT_FATAL(s != NULL);
    job = job_new("ether host 02:00:00:00:00:01", NULL, DLT_RAW);
    CU_ASSERT_FATAL(job != NULL);
    job->src = ewp_pcapshare_ref(s);
    CU_ASSERT(ewp_compile_run(job) == 0 && job->ok == 1);
    for (i = 0; job->ok && i < job->prog.bf_len; i++)
        ret100 += job->prog.bf_insns[i].code == (BPF_RET | BPF_K) && job->prog.bf_insns[i].k == 100;
    CU_ASSERT(ret100 == 1); /* accepts with the shared handle's snaplen */
    ewp_compile_free(job);
    ewp_pcapshare_close(s); /* the last reference: closed and freed */
}

/* Closed by its capture before the job ran: nothing compiled, the job's
 * reference frees the share (valgrind: no leak, no use after free) */
static void
test_closed_share_compiles_nothing(void)
{
    struct ewp_pcapshare *s = ewp_pcapshare_new(pcap_open_dead(DLT_EN10MB, 65535));
    struct ewp_compile_job *job = job_new("udp", "tcp", DLT_EN10MB);

    CU_ASSERT_FATAL(s != NULL && job != NULL);
    job->src = ewp_pcapshare_ref(s);
    ewp_pcapshare_close(s);
    CU_ASSERT(ewp_pcapshare_borrow(s) == NULL);
    CU_ASSERT(ewp_compile_run(job) == -1 && job->ok == 0);
    CU_ASSERT(strcmp(job->errbuf, "capture closed") == 0);
    ewp_compile_free(job);
}

/* Closed while borrowed: the handle stays usable until given back, and is
 * closed then; no second borrow once closing */
static void
test_close_while_borrowed_waits_for_giveback(void)
{
    pcap_t *p = pcap_open_dead(DLT_EN10MB, 65535);
    struct ewp_pcapshare *s = ewp_pcapshare_new(p);
    struct ewp_pcapshare *job_ref;
    struct bpf_program prog;

    CU_ASSERT_FATAL(p != NULL && s != NULL);
    job_ref = ewp_pcapshare_ref(s);
    CU_ASSERT(ewp_pcapshare_borrow(job_ref) == p);
    ewp_pcapshare_close(s);
    CU_ASSERT(ewp_pcapshare_borrow(job_ref) == NULL);
    /* still open: a use after free here is what valgrind and ASan catch */
    CU_ASSERT(pcap_datalink(p) == DLT_EN10MB);
    CU_ASSERT(pcap_compile(p, &prog, "tcp", 1, PCAP_NETMASK_UNKNOWN) == 0);
    pcap_freecode(&prog);
    ewp_pcapshare_giveback(job_ref); /* closes p */
    ewp_pcapshare_unref(job_ref);    /* frees s */
}

/* A worker compiles a long filter against a share that the loop closes
 * meanwhile: the compile completes, the handle is closed by the worker */
static void
test_worker_keeps_a_closed_share_open_until_done(void)
{
    struct ewp_pcapshare *s = ewp_pcapshare_new(pcap_open_dead(DLT_EN10MB, 65535));
    struct ewp_compiler *cc;
    struct ewp_compile_job *job;
    ev_timer timer;
    char *big, *q;
    int n, timed_out = 0;

    CU_ASSERT_FATAL(s != NULL);
    big = malloc(6000 * 7 + 3);
    CU_ASSERT_FATAL(big != NULL);
    for (q = big, n = 0; n < 6000; n++, q += 7)
        memcpy(q, "ip and ", 7);
    memcpy(q, "ip", 3);
    done_count = 0;
    discard_count = 0;
    cc = ewp_compile_new(loop, done_cb, &ctx_marker);
    CU_ASSERT_FATAL(cc != NULL);
    job = job_new(big, NULL, DLT_RAW);
    free(big);
    CU_ASSERT_FATAL(job != NULL);
    job->src = ewp_pcapshare_ref(s);
    job->data = (void *)0L;
    ewp_compile_submit(cc, job);
    /* a worker takes it at once and compiles for a while (~1 s): close
     * meanwhile, as a client's close does */
    (void)usleep(50000);
    ewp_pcapshare_close(s);
    ev_timer_init(&timer, on_timeout, 120.0, 0.0);
    timer.data = &timed_out;
    ev_timer_start(loop, &timer);
    while (done_count < 1 && !timed_out)
        ev_run(loop, EVRUN_ONCE);
    ev_timer_stop(loop, &timer);
    ewp_compile_shutdown(cc, discard_job, EWP_COMPILE_WAIT);
    CU_ASSERT(timed_out == 0 && done_count == 1 && discard_count == 0);
    /* compiled against the shared handle, borrowed before the close (a
     * worker that found it closed would fail the job) */
    CU_ASSERT(done_ok[0] == 1);
}

CU_TestInfo ewp_compile_tests[] = {
    {"ewp_compile_run compiles in the calling thread", test_run_compiles_in_the_calling_thread},
    {"ewp_compile_run gives the pcap error of a bad filter",
     test_run_gives_the_pcap_error_of_a_bad_filter},
    {"ewp_compile_run falls back when the first text fails",
     test_run_falls_back_when_the_first_text_fails},
    {"the worker compiles and calls back in submission order",
     test_worker_compiles_and_calls_back_in_order},
    {"one owner's jobs one at a time, another owner's beside them",
     test_one_owner_at_a_time_others_beside},
    {"a job with a share compiles against the shared handle",
     test_share_is_what_the_job_compiles_against},
    {"a share closed before the job ran compiles nothing", test_closed_share_compiles_nothing},
    {"a share closed while borrowed stays open until given back",
     test_close_while_borrowed_waits_for_giveback},
    {"a worker keeps a share its capture closed open until its compile is done",
     test_worker_keeps_a_closed_share_open_until_done},
    CU_TEST_INFO_NULL,
};
