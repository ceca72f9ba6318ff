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
LIBS = -lei -lpcap -lev

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

ebin/%.beam: erl/%.erl $(wildcard include/*.hrl)
	@mkdir -p ebin
	$(erlc_verbose) erlc -Wall +warnings_as_errors +debug_info -I include -o ebin $<

APP_EVAL = {ok, [{application, A, P}]} = file:consult("erl/ewpcap.app.src"), Ms = [list_to_atom(filename:basename(F, ".erl")) || F <- filelib:wildcard("erl/*.erl")], ok = file:write_file("ebin/ewpcap.app", io_lib:format("~tp.~n", [{application, A, lists:keystore(modules, 1, P, {modules, Ms})}])), halt().

ebin/ewpcap.app: erl/ewpcap.app.src $(ERL_SRC)
	@mkdir -p ebin
	$(Q) $(ERL) -noshell -eval '$(APP_EVAL)'

# CUnit: the C modules linked without main.c, run under valgrind.
test/unit/%.o: test/unit/%.c $(wildcard cnode/*.h)
	$(c_verbose) $(CC) $(EWP_CFLAGS) -Wno-strict-prototypes -c -o $@ $<

test/unit/run: $(UNIT_OBJ) $(CNODE_LIB_OBJ)
	$(ld_verbose) $(CC) -o $@ $^ $(EWP_LDFLAGS) $(LIBS) -lcunit

VALGRIND ?= valgrind --quiet --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect

check: test/unit/run
	$(VALGRIND) test/unit/run

CT_LOGDIR ?= _build/ct_logs
ct: all
	@mkdir -p $(CT_LOGDIR)
	ct_run -noshell -pa $(CURDIR)/ebin -dir test -logdir $(CT_LOGDIR) -include $(CURDIR)/include -cover_stop false

test: check ct

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

clean:
	rm -f cnode/*.o test/unit/*.o test/unit/run priv/ewpcapd ebin/*.beam ebin/ewpcap.app
