/*
 * Copyright (c) 2026, the ewpcap authors. MIT licence (see README.md).
 *
 * fuzz_dispatch's fake compile worker and the rest below the daemon's
 * layers: compile.h as a queue that a 'J' input completes in order (as
 * compile.c's wake_cb does), a deterministic fake compiler, libev's timer
 * (never started: there is no loop) and log.h (every line formatted,
 * none printed).
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>
#include <pcap/pcap.h>

#include "compile.h"
#include "log.h"

#include "fuzz_dispatch.h"

static int fake_compile(struct ewp_compile_job *job, const char *text);

/* ---- compile.h: a queue completed by 'J', and a fake compiler ---- */

struct ewp_compiler *
ewp_compile_new(struct ev_loop *loop, ewp_compile_done_cb done, void *ctx)
{
    (void)loop;
    FUZZ_CHECK(fz.compiler == NULL, "a second compile pool");
    fz.compiler = calloc(1, sizeof(*fz.compiler));
    FUZZ_CHECK(fz.compiler != NULL, "out of memory");
    fz.compiler->done = done;
    fz.compiler->ctx = ctx;
    return fz.compiler;
}

void
ewp_compile_submit(struct ewp_compiler *cc, struct ewp_compile_job *job)
{
    struct ewp_compile_job **jj;

    FUZZ_CHECK(cc != NULL && cc == fz.compiler, "submit to no compile pool");
    FUZZ_CHECK(job->text != NULL, "job without text");
    job->next = NULL;
    for (jj = &fz.jobs; *jj != NULL; jj = &(*jj)->next)
        ;
    *jj = job;
    fz.njobs++;
}

/* "Compile" one text: touch all of it (NUL-terminated), fail as
 * documented at the top of fuzz_dispatch.c, else a one-instruction program. */
static int
fake_compile(struct ewp_compile_job *job, const char *text)
{
    fuzz_touch(text, strlen(text) + 1);
    if (strstr(text, "bad") != NULL) {
        (void)snprintf(job->errbuf, sizeof(job->errbuf), "syntax error in filter expression");
        return -1;
    }
    if (job->linktype == 239 && strstr(text, "tcp") != NULL) {
        (void)snprintf(job->errbuf, sizeof(job->errbuf), "tcp does not apply to NFLOG");
        return -1;
    }
    job->prog.bf_len = 1;
    job->prog.bf_insns = calloc(1, sizeof(*job->prog.bf_insns));
    FUZZ_CHECK(job->prog.bf_insns != NULL, "out of memory");
    return 0;
}

int
ewp_compile_run(struct ewp_compile_job *job)
{
    job->ok = fake_compile(job, job->text) == 0 ||
              (job->fallback != NULL && fake_compile(job, job->fallback) == 0);
    return job->ok ? 0 : -1;
}

/* As compile.c: the program, the texts and the job; not job->data */
void
ewp_compile_free(struct ewp_compile_job *job)
{
    if (job->ok)
        free(job->prog.bf_insns);
    free(job->text);
    free(job->fallback);
    free(job);
}

/* As compile.c: jobs not done get discard, not their callback, and are freed */
void
ewp_compile_shutdown(struct ewp_compiler *cc, ewp_compile_done_cb discard, int running)
{
    (void)running; /* the fake runs jobs in the loop: none is ever running */
    struct ewp_compile_job *job;

    if (cc == NULL)
        return;
    FUZZ_CHECK(cc == fz.compiler, "shutdown of another compile pool");
    while ((job = fz.jobs) != NULL) {
        fz.jobs = job->next;
        discard(cc->ctx, job);
        ewp_compile_free(job);
    }
    fz.njobs = 0;
    free(cc);
    fz.compiler = NULL;
}

/* ---- libev: request.c's interface check timer (never started: no loop) ---- */

void
ev_timer_start(struct ev_loop *loop, ev_timer *w)
{
    FUZZ_CHECK(loop != NULL && w != NULL, "ev_timer_start without a loop");
}

void
ev_timer_stop(struct ev_loop *loop, ev_timer *w)
{
    FUZZ_CHECK(loop != NULL && w != NULL, "ev_timer_stop without a loop");
}

/* ---- log.h: format everything, print nothing ---- */

int ewp_verbose = 2;

void
ewp_log_write(const char *level, const char *fmt, ...)
{
    char line[1024];
    va_list ap;

    (void)level;
    va_start(ap, fmt);
    (void)vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fuzz_touch(line, strnlen(line, sizeof(line)));
}
