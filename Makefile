# ewpcap: the ewpcapd C-node (priv/ewpcapd) and the ewpcap Erlang application (ebin/).
#
#   make            build everything
#   make check      CUnit tests of the C modules, under valgrind
#   make ct         Common Test suites (live capture: run as root)
#   make test       check + ct
#   make deps       install the Debian packages needed to build and test (as root)
#   make setcap     let a non-root user run priv/ewpcapd (cap_net_raw,cap_net_admin)
#   make dialyzer / lint / clean
#
# V=1 shows full commands. ei paths come from erl and can be overridden.

REBAR ?= rebar3
ERL ?= erl
CC ?= cc
PREFIX ?= /usr/local

ERL_EI_DIR ?= $(shell $(ERL) -noshell -eval 'io:format("~s", [code:lib_dir(erl_interface)]), halt().' 2>/dev/null)
ERL_EI_INCLUDE_DIR ?= $(ERL_EI_DIR)/include
ERL_EI_LIB_DIR ?= $(ERL_EI_DIR)/lib

V ?= 0
Q_0 = @
Q = $(Q_$(V))
c_verbose_0 = @echo "  CC      $@";
c_verbose = $(c_verbose_$(V))
ld_verbose_0 = @echo "  LD      $@";
ld_verbose = $(ld_verbose_$(V))
erlc_verbose_0 = @echo "  ERLC    $<";
erlc_verbose = $(erlc_verbose_$(V))

WARN = -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wpointer-arith -Wstrict-prototypes
HARDEN = -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
CFLAGS ?= -O2 -g
EWP_CFLAGS = $(CFLAGS) $(WARN) $(HARDEN) -std=gnu11 -pthread -I$(ERL_EI_INCLUDE_DIR) -Icnode
LDFLAGS ?=
EWP_LDFLAGS = $(LDFLAGS) -pthread -pie -Wl,-z,relro,-z,now -L$(ERL_EI_LIB_DIR)
LIBS = -lei -lpcap -lev -lssl -lcrypto -lcap-ng $(shell pkg-config --libs nettle)

CNODE_SRC = $(wildcard cnode/*.c)
CNODE_OBJ = $(CNODE_SRC:.c=.o)
CNODE_LIB_OBJ = $(filter-out cnode/main.o,$(CNODE_OBJ))

ERL_SRC = $(wildcard erl/*.erl)
ERL_BEAM = $(patsubst erl/%.erl,ebin/%.beam,$(ERL_SRC))

UNIT_SRC = $(wildcard test/unit/*.c)
UNIT_OBJ = $(UNIT_SRC:.c=.o)

.PHONY: all cnode erl check ct test deps setcap dialyzer lint clean install

all: cnode erl

cnode: priv/ewpcapd

priv/ewpcapd: $(CNODE_OBJ)
	@mkdir -p priv
	$(ld_verbose) $(CC) -o $@ $^ $(EWP_LDFLAGS) $(LIBS)

cnode/%.o: cnode/%.c $(wildcard cnode/*.h)
	$(c_verbose) $(CC) $(EWP_CFLAGS) -c -o $@ $<

erl: $(ERL_BEAM) ebin/ewpcap.app

ebin/%.beam: erl/%.erl $(wildcard include/*.hrl) $(wildcard erl/*.hrl)
	@mkdir -p ebin
	$(erlc_verbose) erlc -Wall +warnings_as_errors +debug_info -I include -o ebin $<

# The link-type names of ewpcap_dump_dlt, from libpcap (bin-src/dlt_table.c).
DLT_HRL = erl/ewpcap_dump_dlt.hrl

ebin/ewpcap_dump_dlt.beam: $(DLT_HRL)

$(DLT_HRL): bin-src/dlt_table.c
	@mkdir -p _build/gen
	@echo "  GEN     $@"
	$(Q) $(CC) $(CFLAGS) $(WARN) -std=gnu11 -o _build/gen/dlt_table $< $(LDFLAGS) -lpcap
	$(Q) _build/gen/dlt_table > $@.tmp && mv $@.tmp $@

APP_EVAL = {ok, [{application, A, P}]} = file:consult("erl/ewpcap.app.src"), Ms = [list_to_atom(filename:basename(F, ".erl")) || F <- filelib:wildcard("erl/*.erl")], ok = file:write_file("ebin/ewpcap.app", io_lib:format("~tp.~n", [{application, A, lists:keystore(modules, 1, P, {modules, Ms})}])), halt().

ebin/ewpcap.app: erl/ewpcap.app.src $(ERL_SRC)
	@mkdir -p ebin
	$(Q) $(ERL) -noshell -eval '$(APP_EVAL)'

# CUnit: the C modules linked without main.c, run under valgrind.
test/unit/%.o: test/unit/%.c $(wildcard cnode/*.h) $(wildcard test/unit/*.h)
	$(c_verbose) $(CC) $(EWP_CFLAGS) -Wno-strict-prototypes -c -o $@ $<

test/unit/run: $(UNIT_OBJ) $(CNODE_LIB_OBJ)
	$(ld_verbose) $(CC) -o $@ $^ $(EWP_LDFLAGS) $(LIBS) -lcunit

# --fair-sched=yes: the compile workers run side by side (test_compile.c)
VALGRIND ?= valgrind --quiet --fair-sched=yes --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect

check: test/unit/run
	$(VALGRIND) test/unit/run

# Through the sanitizer runs' verdict (test/sanitize/ct-run plain): ct_run as
# node $(CT_SNAME) (default ewp_plain_<pid>: two runs side by side keep apart),
# logs in $(CT_DIR)/ct; fails on a failed case, fewer than CT_MIN_CASES
# planned, or a skip not in test/skips.allow (ct_run itself exits 0 on skips).
CT_DIR ?= $(CURDIR)/_build/ct
CT_MIN_CASES ?= $(CT_ASAN_MIN_CASES)
ct: all
	$(if $(CT_SNAME),CT_SNAME=$(CT_SNAME)) bash test/sanitize/ct-run plain $(CT_DIR) $(CT_MIN_CASES) \
		-dir test -cover_stop false $(CT_ARGS)

# Every test: CUnit (valgrind, then ASan+UBSan), all Common Test suites, the
# live suite with the daemon under valgrind and under ASan+UBSan, the fuzz
# regressions and a short fuzzing run (FUZZ_SECONDS, default 60).
test: check asan-check ct ct-memcheck ct-asan fuzz-regress fuzz

deps:
	bash .ci/deps

setcap: priv/ewpcapd
	setcap cap_net_raw,cap_net_admin=ep priv/ewpcapd

dialyzer: erl
	dialyzer --no_check_plt --build_plt --output_plt _build/ewpcap.plt --apps erts kernel stdlib >/dev/null 2>&1 || true
	dialyzer --plt _build/ewpcap.plt -Wunmatched_returns -Werror_handling -Wunderspecs ebin

lint:
	clang-tidy --quiet $(CNODE_SRC) -- $(EWP_CFLAGS) 
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability --std=c11 -I cnode $(CNODE_SRC)
	@# the suites, test helpers and bench modules with every warning an error
	@# (ct_run compiles suites without -Wall: an unexported doc function or an
	@# unused helper passes unseen there)
	mkdir -p _build/lint-erl && erlc -Wall +warnings_as_errors -I include -I test \
	    -o _build/lint-erl test/*.erl bench/*.erl

clean:
	rm -f cnode/*.o test/unit/*.o test/unit/run priv/ewpcapd ebin/*.beam ebin/ewpcap.app
	rm -f $(DLT_HRL) _build/gen/dlt_table

# ---- fuzzing and sanitizers (begin)
#
#   make fuzz [FUZZ_SECONDS=60]  build the libFuzzer targets of test/fuzz/ and run each
#                                for its share of FUZZ_SECONDS on the seed corpus; any
#                                finding fails (reproducers in _build/fuzz/artifacts/)
#   make fuzz-regress            run the seed corpus and test/fuzz/crashes/ once, no fuzzing
#   make fuzz-corpus             regenerate test/fuzz/corpus/ (make_corpus.escript)
#   make asan-check              the CUnit runner built with ASan+UBSan (_build/asan/), run
#   make asan                    priv/ewpcapd-asan: the daemon with ASan+UBSan
#   make fuzz-clean              remove _build/fuzz, _build/asan and priv/ewpcapd-asan
#
# Reproduce a finding: _build/fuzz/<target> <crash file>. fuzz_dispatch keeps
# state between inputs; its _build/fuzz/artifacts/fuzz_dispatch-history file
# replays every input since the last reset (see test/fuzz/fuzz_dispatch.c);
# it needs EWP_FUZZ_FILES=$(CURDIR)/_build/fuzz/files (its --files directory).

SAN_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_MAX_LEN ?= 4096
FUZZ_FLAGS ?=
FUZZ_TARGETS = fuzz_decode fuzz_dispatch fuzz_handshake fuzz_atomcache fuzz_demux
FUZZ_DIR = _build/fuzz
ASAN_DIR = _build/asan

SAN_CFLAGS = -O1 -g -fno-omit-frame-pointer $(filter-out -Werror,$(WARN)) -std=gnu11 -pthread \
	-I$(ERL_EI_INCLUDE_DIR) -Icnode
FUZZ_SAN = -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
ASAN_SAN = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_ASAN_OPTIONS = detect_leaks=1:detect_stack_use_after_return=1
FUZZ_UBSAN_OPTIONS = print_stacktrace=1:halt_on_error=1

FUZZ_BINS = $(addprefix $(FUZZ_DIR)/,$(FUZZ_TARGETS))
FUZZ_HDRS = $(wildcard cnode/*.h) $(wildcard test/fuzz/*.h)
ASAN_CNODE_OBJ = $(patsubst cnode/%.c,$(ASAN_DIR)/cnode/%.o,$(CNODE_SRC))
ASAN_LIB_OBJ = $(filter-out $(ASAN_DIR)/cnode/main.o,$(ASAN_CNODE_OBJ))
ASAN_UNIT_OBJ = $(patsubst test/unit/%.c,$(ASAN_DIR)/test/unit/%.o,$(UNIT_SRC))

.PHONY: fuzz fuzz-build fuzz-regress fuzz-corpus asan asan-check fuzz-clean

fuzz-build: $(FUZZ_BINS)

$(FUZZ_DIR)/cnode/%.o: cnode/%.c $(FUZZ_HDRS)
	@mkdir -p $(@D)
	$(c_verbose) $(SAN_CC) $(SAN_CFLAGS) $(FUZZ_SAN) -c -o $@ $<

$(FUZZ_DIR)/test/%.o: test/fuzz/%.c $(FUZZ_HDRS)
	@mkdir -p $(@D)
	$(c_verbose) $(SAN_CC) $(SAN_CFLAGS) $(FUZZ_SAN) -c -o $@ $<

$(FUZZ_DIR)/fuzz_decode: $(FUZZ_DIR)/test/fuzz_decode.o $(FUZZ_DIR)/cnode/decode.o $(FUZZ_DIR)/cnode/decode_check.o
	$(ld_verbose) $(SAN_CC) $(FUZZ_SAN) -o $@ $^ -L$(ERL_EI_LIB_DIR) -lei -pthread

# The layers above dist.c, real; dist.h, capture.h, compile.h, log.h and
# pcap_findalldevs are faked in the harness (its files: fuzz_dispatch.h).
# Refs and pids are made predictable (see the harness).
FUZZ_DISPATCH_OBJS = router.o ctl.o request.o handles.o deliver.o filter.o files.o rpc.o \
	decode.o decode_check.o encode.o atomcache_in.o atomcache_out.o
FUZZ_DISPATCH_TEST_OBJS = fuzz_dispatch.o fuzz_dispatch_ops.o fuzz_dispatch_dist.o \
	fuzz_dispatch_capture.o fuzz_dispatch_compile.o fuzz_dispatch_check.o
$(FUZZ_DIR)/fuzz_dispatch: $(addprefix $(FUZZ_DIR)/test/,$(FUZZ_DISPATCH_TEST_OBJS)) \
		$(addprefix $(FUZZ_DIR)/cnode/,$(FUZZ_DISPATCH_OBJS))
	$(ld_verbose) $(SAN_CC) $(FUZZ_SAN) -o $@ $^ -Wl,--wrap=ei_make_ref -Wl,--wrap=ei_make_pid \
		-L$(ERL_EI_LIB_DIR) -lei -pthread

$(FUZZ_DIR)/fuzz_atomcache: $(FUZZ_DIR)/test/fuzz_atomcache.o $(FUZZ_DIR)/cnode/atomcache_in.o \
		$(FUZZ_DIR)/cnode/atomcache_out.o \
		$(FUZZ_DIR)/cnode/decode_check.o $(FUZZ_DIR)/cnode/decode.o
	$(ld_verbose) $(SAN_CC) $(FUZZ_SAN) -o $@ $^ -L$(ERL_EI_LIB_DIR) -lei -pthread

$(FUZZ_DIR)/fuzz_handshake: $(FUZZ_DIR)/test/fuzz_handshake.o $(FUZZ_DIR)/cnode/handshake.o
	$(ld_verbose) $(SAN_CC) $(FUZZ_SAN) -o $@ $^ -pthread $(shell pkg-config --libs nettle)

# differential: every answer against pcap_offline_filter per member
$(FUZZ_DIR)/fuzz_demux: $(FUZZ_DIR)/test/fuzz_demux.o $(FUZZ_DIR)/cnode/demux.o $(FUZZ_DIR)/cnode/demux_run.o $(FUZZ_DIR)/cnode/demux_loop.o
	$(ld_verbose) $(SAN_CC) $(FUZZ_SAN) -o $@ $^ -lpcap -pthread

# Each target fuzzes for its share of FUZZ_SECONDS into a work corpus under
# _build/fuzz/corpus/ (seeded from test/fuzz/corpus/, which stays as it is).
# fuzz_dispatch also reads the request seeds of fuzz_decode.
fuzz: $(FUZZ_BINS)
	$(Q) per=$$(( $(FUZZ_SECONDS) / $(words $(FUZZ_TARGETS)) )); [ $$per -ge 1 ] || per=1; \
	failed=; \
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/artifacts; \
	  seeds=test/fuzz/corpus/$$t; \
	  [ $$t != fuzz_dispatch ] || seeds="$$seeds test/fuzz/corpus/fuzz_decode"; \
	  echo "  FUZZ    $$t for $$per s (log: $(FUZZ_DIR)/$$t.log)"; \
	  if EWP_FUZZ_HISTORY=$(FUZZ_DIR)/artifacts/$$t-history EWP_FUZZ_FILES=$(CURDIR)/$(FUZZ_DIR)/files \
	     ASAN_OPTIONS=$(FUZZ_ASAN_OPTIONS) UBSAN_OPTIONS=$(FUZZ_UBSAN_OPTIONS) \
	     $(FUZZ_DIR)/$$t -max_total_time=$$per -max_len=$(FUZZ_MAX_LEN) -timeout=10 \
	       -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t- $(FUZZ_FLAGS) \
	       $(FUZZ_DIR)/corpus/$$t $$seeds >$(FUZZ_DIR)/$$t.log 2>&1; then \
	    sed -n 's/^stat::\(number_of_executed_units\|average_exec_per_sec\|new_units_added\):/    \1:/p' \
	      $(FUZZ_DIR)/$$t.log; \
	    grep -o 'cov: [0-9]* ft: [0-9]*' $(FUZZ_DIR)/$$t.log | tail -1 | sed 's/^/    /'; \
	  else \
	    failed="$$failed $$t"; tail -60 $(FUZZ_DIR)/$$t.log; \
	  fi; \
	done; \
	if [ -n "$$failed" ]; then \
	  echo "fuzz: findings in$$failed; reproducers in $(FUZZ_DIR)/artifacts/"; exit 1; \
	fi

# The seeds, the work corpus and the saved crashes (test/fuzz/crashes/<target>-*),
# each run once: a regression check that takes seconds.
fuzz-regress: $(FUZZ_BINS)
	$(Q) for t in $(FUZZ_TARGETS); do \
	  files=$$(ls test/fuzz/corpus/$$t/* test/fuzz/crashes/$$t-* 2>/dev/null); \
	  [ $$t != fuzz_dispatch ] || files="$$files $$(ls test/fuzz/corpus/fuzz_decode/*)"; \
	  echo "  REGRESS $$t ($$(echo $$files | wc -w) inputs)"; \
	  EWP_FUZZ_FILES=$(CURDIR)/$(FUZZ_DIR)/files \
	  ASAN_OPTIONS=$(FUZZ_ASAN_OPTIONS) UBSAN_OPTIONS=$(FUZZ_UBSAN_OPTIONS) \
	    $(FUZZ_DIR)/$$t $$files >$(FUZZ_DIR)/$$t-regress.log 2>&1 || \
	    { tail -60 $(FUZZ_DIR)/$$t-regress.log; exit 1; }; \
	done

fuzz-corpus:
	escript test/fuzz/make_corpus.escript test/fuzz/corpus

# CUnit under ASan+UBSan: the same $(UNIT_SRC) and cnode modules as `check`,
# objects in _build/asan/ so they never mix with the normal ones.
$(ASAN_DIR)/cnode/%.o: cnode/%.c $(wildcard cnode/*.h)
	@mkdir -p $(@D)
	$(c_verbose) $(SAN_CC) $(SAN_CFLAGS) $(ASAN_SAN) -c -o $@ $<

$(ASAN_DIR)/test/unit/%.o: test/unit/%.c $(wildcard cnode/*.h) $(wildcard test/unit/*.h)
	@mkdir -p $(@D)
	$(c_verbose) $(SAN_CC) $(SAN_CFLAGS) $(ASAN_SAN) -Wno-strict-prototypes -c -o $@ $<

$(ASAN_DIR)/test/unit/run: $(ASAN_UNIT_OBJ) $(ASAN_LIB_OBJ)
	$(ld_verbose) $(SAN_CC) $(ASAN_SAN) -o $@ $^ -L$(ERL_EI_LIB_DIR) -pthread $(LIBS) -lcunit

ifeq ($(strip $(UNIT_SRC)),)
asan-check:
	@echo "asan-check: no CUnit sources in test/unit/ yet" >&2; exit 1
else
asan-check: $(ASAN_DIR)/test/unit/run
	ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=1 \
	UBSAN_OPTIONS=$(FUZZ_UBSAN_OPTIONS) $(ASAN_DIR)/test/unit/run
endif

asan: priv/ewpcapd-asan

priv/ewpcapd-asan: $(ASAN_CNODE_OBJ)
	@mkdir -p priv
	$(ld_verbose) $(SAN_CC) $(ASAN_SAN) -o $@ $^ -L$(ERL_EI_LIB_DIR) -pthread $(LIBS)

fuzz-clean:
	rm -rf $(FUZZ_DIR) $(ASAN_DIR) priv/ewpcapd-asan

# ---- fuzzing and sanitizers (end)

# ---- bench (begin)
#
#   make bench        (root) pktgen into a veth between network namespaces;
#                     bare libpcap, Erlang distribution and ewpcap (1 packet per
#                     message, {batch, 64}, same host and remote owner) side by
#                     side; latency and RSS checks. Prints the table and
#                     PASS/FAIL per target; writes bench/out/results.{json,csv}
#                     and bench/out/plot.png, and the README's table
#                     (bench/readme_table.sh). A FAIL makes it exit 1.
#                     Also BENCH_COUNT, BENCH_RATES, BENCH_SIZES (bench/run.sh).
#                     BENCH_EWPCAPD_BEFORE=/path/to/old/ewpcapd: every ewpcapd row
#                     also with that binary, interleaved; a before/after table.
#   make bench-atoms  the receiving node's CPU per packet message with and
#                     without the atom cache (bench/ewpcap_bench_atoms.erl)
#   make bench-scale  (root) 1,000 handles on lo from 20 peer nodes, one ewpcapd:
#                     open time, exact delivery, kernel rings, CPU per packet
#                     with idle handles open, fds and RSS back (bench/scale.sh);
#                     bench/out/scale.json; exit 1 on a missed target
#   make bench-demux  ewp_demux_match's ns per packet for 1-1,000 members of one
#                     filter shape and of a mix, beside each member's program run
#                     by pcap_offline_filter, same run (bench/demux_bench.c; no root)
#   make bench-build  only the bench programs
#   make bench-clean  remove bench/out

BENCH_OUT = bench/out
BENCH_BINS = $(BENCH_OUT)/pktgen $(BENCH_OUT)/pcapcount
BENCH_CFLAGS = $(CFLAGS) $(WARN) -std=gnu11

.PHONY: bench bench-build bench-clean bench-dump bench-atoms bench-scale bench-demux

BENCH_BEAMS = $(patsubst bench/%.erl,$(BENCH_OUT)/ebin/%.beam,$(wildcard bench/*.erl))

bench-build: $(BENCH_BINS) $(BENCH_BEAMS) $(BENCH_OUT)/ebin/ewpcap_rawdist.beam

$(BENCH_OUT)/ebin/ewpcap_rawdist.beam: test/ewpcap_rawdist.erl
	@mkdir -p $(@D)
	$(erlc_verbose) erlc -Wall +warnings_as_errors -o $(@D) $<

$(BENCH_OUT)/pktgen: bench/pktgen.c
	@mkdir -p $(@D)
	$(c_verbose) $(CC) $(BENCH_CFLAGS) -o $@ $< $(LDFLAGS)

$(BENCH_OUT)/pcapcount: bench/pcapcount.c
	@mkdir -p $(@D)
	$(c_verbose) $(CC) $(BENCH_CFLAGS) -o $@ $< $(LDFLAGS) -lpcap

$(BENCH_OUT)/ebin/%.beam: bench/%.erl $(wildcard include/*.hrl) $(wildcard bench/*.hrl)
	@mkdir -p $(@D)
	$(erlc_verbose) erlc -Wall +warnings_as_errors -I include -o $(@D) $<

bench: all bench-build
	bash bench/run.sh
	bash bench/dump_ratio.sh
	bash bench/scale.sh

$(BENCH_OUT)/ebin/ewpcap_bench_scale.beam: bench/ewpcap_bench_scale.erl $(wildcard include/*.hrl)
	@mkdir -p $(@D)
	$(erlc_verbose) erlc -Wall +warnings_as_errors -I include -o $(@D) $<

# just the scale row (issue 13, section 3)
bench-scale: all $(BENCH_OUT)/ebin/ewpcap_bench_scale.beam
	bash bench/scale.sh

# many filters on one shared capture (issue 13, section 3; no root needed)
$(BENCH_OUT)/demux_bench: bench/demux_bench.c cnode/demux.c cnode/demux_run.c cnode/demux_loop.c cnode/demux.h cnode/demux_int.h
	@mkdir -p $(@D)
	$(c_verbose) $(CC) $(BENCH_CFLAGS) -Icnode -o $@ bench/demux_bench.c cnode/demux.c cnode/demux_run.c cnode/demux_loop.c $(LDFLAGS) -lpcap

bench-demux: $(BENCH_OUT)/demux_bench
	$(BENCH_OUT)/demux_bench

# the atom cache's worth on the receiving node (issue 13; no root needed)
bench-atoms: bench-build
	erl -noshell -sname ewp_bench_atoms_$$$$ -pa $(BENCH_OUT)/ebin -run ewpcap_bench_atoms main

# just ewpcap_dump -r against tcpdump -r (issue 16); DUMP_BEFORE=/path/to/an/older
# ewpcap_dump times that one too, interleaved (bench/dump_ratio.sh)
bench-dump: all
	bash bench/dump_ratio.sh

bench-clean:
	rm -rf $(BENCH_OUT)

# ---- bench (end)

# ---- live sanitizer runs (begin)
#
#   make ct-asan      EVERY Common Test suite (test/*_SUITE.erl) with every
#                     ewpcapd the run starts built with ASan+UBSan (make asan):
#                     the embedded daemons, those the helpers start in network
#                     namespaces, those of peer nodes, erl and ewpcap_dump runs.
#                     The soak suite is shortened (CT_ASAN_SOAK_CYCLES/_OWNERS).
#   make ct-memcheck  the live suite (group lo of ewpcap_SUITE) with the daemon
#                     under valgrind memcheck: valgrind is too slow for all.
#
# test/sanitize/ct-run sets EWPCAPD to test/sanitize/ewpcapd-{asan,memcheck}
# (read by ewpcap_daemon:executable/0 and by every test helper that starts a
# daemon), EWP_SAN_DIR for the reports, EWP_NS_PREFIX for the namespaces, runs
# ct_run as node $(CT_SNAME) into _build/san/KIND/ct, then test/sanitize/verdict
# fails on any sanitizer report, a ct_run exit status other than 0, a failed
# case, a planned case without a result, fewer than CT_*_MIN_CASES planned,
# 0 cases run, or a skip not listed in test/skips.allow.
SAN_DIR = $(CURDIR)/_build/san
CT_SNAME ?=
CT_ASAN_MIN_CASES ?= 352
CT_MEMCHECK_MIN_CASES ?= 22
CT_ASAN_SOAK_CYCLES ?= 200
CT_ASAN_SOAK_OWNERS ?= 100
SAN_CT_ENV = $(if $(CT_SNAME),CT_SNAME=$(CT_SNAME))

.PHONY: ct-memcheck ct-asan

ct-memcheck: all
	$(SAN_CT_ENV) bash test/sanitize/ct-run memcheck $(SAN_DIR)/memcheck $(CT_MEMCHECK_MIN_CASES) \
		-dir test -suite ewpcap_SUITE -group lo

ct-asan: all asan
	$(SAN_CT_ENV) EWP_SOAK_CYCLES=$(CT_ASAN_SOAK_CYCLES) EWP_SOAK_OWNERS=$(CT_ASAN_SOAK_OWNERS) \
		bash test/sanitize/ct-run asan $(SAN_DIR)/asan $(CT_ASAN_MIN_CASES) -dir test
# ---- live sanitizer runs (end)

# ---- layers (begin)
#
#   make check-layers   the include graph of cnode/ (foo.c + foo.h = module foo)
#                       printed; fails naming any cycle (.ci/check-layers)

.PHONY: check-layers

check-layers:
	bash .ci/check-layers cnode
# ---- layers (end)

# ---- tools (begin)
#
#   make                 also builds bin/ewpcap_dump, the tcpdump-like escript, and
#                        bin/ewpcap_extcap, the Wireshark extcap (ebin/ in an archive;
#                        see bin-src/mkescript.escript)
#   make docs            edoc HTML of the Erlang modules in doc/
#   make install [PREFIX=/usr/local] [DESTDIR=] [SETCAP=setcap]
#                        the application in $(PREFIX)/lib/erlang/lib/ewpcap-VSN
#                        (ebin, include, priv/ewpcapd with cap_net_raw,cap_net_admin
#                        unless SETCAP= is empty or setcap is missing),
#                        $(PREFIX)/sbin/ewpcapd (a link to it), $(PREFIX)/bin/ewpcap_dump,
#                        $(PREFIX)/bin/ewpcap_extcap and a link to it in Wireshark's
#                        extcap folder ($(EXTCAP_DIR), from tshark -G folders),
#                        the man pages ewpcap_dump(1), ewpcap_extcap(1) and ewpcapd(8), and the
#                        docs with the systemd unit example in $(PREFIX)/share/doc/ewpcap
#   make uninstall       removes what install installed
#   make man-check       renders the man pages (man -l) and fails on warnings

EWP_VSN := $(shell sed -n 's/.*{vsn, *"\([^"]*\)"}.*/\1/p' erl/ewpcap.app.src)
# Wireshark's global extcap folder, as the installed tshark reports it
# (Debian 12: /usr/lib/x86_64-linux-gnu/wireshark/extcap); empty without
# tshark, and then ewpcap_extcap is installed in bin/ only. Asked once,
# and only by the recipes that use it (tshark takes a second or two).
EXTCAP_DIR ?= $(eval EXTCAP_DIR := $(shell tshark -G folders 2>/dev/null | \
	sed -n 's/^Extcap path:[[:space:]]*//p' | head -1))$(EXTCAP_DIR)
SETCAP ?= setcap
INSTALL ?= install
APP_INSTALL_DIR = $(DESTDIR)$(PREFIX)/lib/erlang/lib/ewpcap-$(EWP_VSN)
MAN_PAGES = docs/ewpcap_dump.1 docs/ewpcap_extcap.1 docs/ewpcapd.8

.PHONY: escript docs install uninstall man-check tools-clean

all: escript

escript: bin/ewpcap_dump bin/ewpcap_extcap

bin/ewpcap_dump bin/ewpcap_extcap: $(ERL_BEAM) ebin/ewpcap.app bin-src/mkescript.escript
	@echo "  ESCRIPT $@"
	$(Q) escript bin-src/mkescript.escript $@ ebin

docs: erl
	$(Q) $(ERL) -noshell -eval 'ok = edoc:files(filelib:wildcard("erl/*.erl"), [{dir, "doc"}, {includes, ["include"]}, {preprocess, true}, {title, "ewpcap $(EWP_VSN)"}]), halt().'
	@echo "  EDOC    doc/index.html"

install: all
	$(INSTALL) -d $(APP_INSTALL_DIR)/ebin $(APP_INSTALL_DIR)/include $(APP_INSTALL_DIR)/priv \
		$(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin \
		$(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man8 \
		$(DESTDIR)$(PREFIX)/share/doc/ewpcap
	$(INSTALL) -m 644 ebin/*.beam ebin/ewpcap.app $(APP_INSTALL_DIR)/ebin
	$(INSTALL) -m 644 include/*.hrl $(APP_INSTALL_DIR)/include
	$(INSTALL) -m 755 priv/ewpcapd $(APP_INSTALL_DIR)/priv/ewpcapd
	ln -sf ../lib/erlang/lib/ewpcap-$(EWP_VSN)/priv/ewpcapd $(DESTDIR)$(PREFIX)/sbin/ewpcapd
	$(INSTALL) -m 755 bin/ewpcap_dump $(DESTDIR)$(PREFIX)/bin/ewpcap_dump
	$(INSTALL) -m 755 bin/ewpcap_extcap $(DESTDIR)$(PREFIX)/bin/ewpcap_extcap
	$(Q) if [ -n "$(EXTCAP_DIR)" ]; then \
	  $(INSTALL) -d $(DESTDIR)$(EXTCAP_DIR) && \
	  ln -sf $(PREFIX)/bin/ewpcap_extcap $(DESTDIR)$(EXTCAP_DIR)/ewpcap_extcap && \
	  echo "  EXTCAP  $(DESTDIR)$(EXTCAP_DIR)/ewpcap_extcap -> $(PREFIX)/bin/ewpcap_extcap"; \
	else \
	  echo "install: no tshark to ask for Wireshark's extcap folder (set EXTCAP_DIR=): ewpcap_extcap is in $(PREFIX)/bin only"; \
	fi
	$(INSTALL) -m 644 docs/ewpcap_dump.1 docs/ewpcap_extcap.1 $(DESTDIR)$(PREFIX)/share/man/man1
	$(INSTALL) -m 644 docs/ewpcapd.8 $(DESTDIR)$(PREFIX)/share/man/man8
	$(INSTALL) -m 644 README.md docs/PROTOCOL.md docs/ewpcapd.service $(DESTDIR)$(PREFIX)/share/doc/ewpcap
	$(Q) if [ -z "$(SETCAP)" ]; then \
	  echo "install: SETCAP is empty: $(APP_INSTALL_DIR)/priv/ewpcapd has no capabilities (run it as root)"; \
	elif ! command -v $(SETCAP) >/dev/null 2>&1; then \
	  echo "install: $(SETCAP) not found (Debian: apt install libcap2-bin): $(APP_INSTALL_DIR)/priv/ewpcapd has no capabilities (run it as root)"; \
	elif $(SETCAP) cap_net_raw,cap_net_admin=ep $(APP_INSTALL_DIR)/priv/ewpcapd; then \
	  echo "  SETCAP  cap_net_raw,cap_net_admin=ep $(APP_INSTALL_DIR)/priv/ewpcapd"; \
	else \
	  echo "install: $(SETCAP) failed (not root?): $(APP_INSTALL_DIR)/priv/ewpcapd has no capabilities"; \
	fi

uninstall:
	rm -rf $(APP_INSTALL_DIR) $(DESTDIR)$(PREFIX)/share/doc/ewpcap
	rm -f $(DESTDIR)$(PREFIX)/sbin/ewpcapd $(DESTDIR)$(PREFIX)/bin/ewpcap_dump \
		$(DESTDIR)$(PREFIX)/bin/ewpcap_extcap \
		$(DESTDIR)$(PREFIX)/share/man/man1/ewpcap_dump.1 $(DESTDIR)$(PREFIX)/share/man/man1/ewpcap_extcap.1 \
		$(DESTDIR)$(PREFIX)/share/man/man8/ewpcapd.8
	$(if $(EXTCAP_DIR),rm -f $(DESTDIR)$(EXTCAP_DIR)/ewpcap_extcap)

man-check:
	$(Q) for m in $(MAN_PAGES); do \
	  out=$$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings=w -l $$m 2>&1 >/dev/null); \
	  if [ -n "$$out" ]; then echo "$$m:"; echo "$$out"; exit 1; fi; \
	  echo "  MAN     $$m"; \
	done

clean: tools-clean

tools-clean:
	rm -rf bin/ewpcap_dump bin/ewpcap_dump.tmp bin/ewpcap_extcap bin/ewpcap_extcap.tmp doc
# ---- tools (end)

# ---- interop (begin)
#
#   make interop          every interop check below (root; CI runs it)
#   make interop-otp27    an OTP 27 client node (Debian 13 chroot, built once with
#                         debootstrap into _build/trixie) against priv/ewpcapd:
#                         capture byte-identical with tcpdump, rpc/erpc/block_call,
#                         owner death, node down, batch, the original API; over
#                         plaintext and over TLS distribution (test/interop/otp27)
#   make interop-elixir   the README's Elixir example run as written, its shown
#                         output checked (test/interop/elixir_readme.exs)
#   make interop-install  make install DESTDIR=tmp PREFIX=/usr/local, then as user
#                         nobody: ewpcap_dump -D, a capture on lo through the
#                         setcap'd ewpcapd, man -l of both pages; make uninstall
#                         leaves nothing (test/interop/install)

.PHONY: interop interop-otp27 interop-elixir interop-install

interop: interop-otp27 interop-elixir interop-install

interop-install: all
	bash test/interop/install

interop-elixir: all
	timeout 120 elixir -pa $(CURDIR)/ebin test/interop/elixir_readme.exs README.md

interop-otp27: all
	bash test/interop/otp27
# ---- interop (end)
