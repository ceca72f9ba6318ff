#!/usr/bin/env escript
%% -*- erlang -*-
%%
%% Builds the escripts bin/ewpcap_dump and bin/ewpcap_extcap from ebin/
%% (called by `make'):
%%
%%     escript bin-src/mkescript.escript bin/ewpcap_dump ebin
%%
%% The result is an escript whose archive holds the ewpcap application
%% (ewpcap/ebin/*.beam and ewpcap.app; the escript's main module is
%% named after the file: ewpcap_dump, ewpcap_extcap). Its first line is
%% `#!/bin/sh' and its second line, a comment for escript, is a one-line
%% sh wrapper:
%%
%%   - OTP 25 cannot handle SIGINT in Erlang, so the wrapper runs the
%%     escript with +Bi (the emulator ignores SIGINT) in the background,
%%     keeping standard input (`-r -'; /dev/null when it is closed), and
%%     turns SIGINT, SIGTERM and
%%     SIGHUP into SIGTERM for it, which ewpcap_dump handles (statistics,
%%     exit 0);
%%   - it then waits for the emulator and exits with its status;
%%   - `--tls-optfile F' adds `-proto_dist inet_tls -ssl_dist_optfile F'
%%     (F made absolute) to ERL_FLAGS, and an IPv6 host in `-N NODE' (a
%%     colon after the @) `-proto_dist inet6_tcp' (inet6_tls with TLS),
%%     unless ERL_FLAGS names a -proto_dist already: the distribution
%%     protocol is fixed when the emulator starts (issue 11).
%%
%% `escript bin/ewpcap_dump ...' also works (Ctrl-C then ends the emulator
%% at once, without the statistics, as for any escript: escript runs it
%% with +B; SIGTERM still gives them).

-include_lib("kernel/include/file.hrl").

main([Out, Ebin]) ->
    Files = filelib:wildcard(filename:join(Ebin, "*.{beam,app}")),
    Entries = [{"ewpcap/ebin/" ++ filename:basename(F), read(F)} || F <- Files],
    Wrapper =
        "2>/dev/null; { command exec 3<&0; } 2>/dev/null || exec 3</dev/null; "
        "f=; v=; n=; for a; do case $n in o) f=$a;; N) case $a in *@*:*) v=6;; esac;; esac; n=; "
        "case $a in --tls-optfile) n=o;; --tls-optfile=*) f=${a#*=};; -N|--node) n=N;; "
        "-N*@*:*|--node=*@*:*) v=6;; esac; done; "
        "case \" $ERL_FLAGS \" in *\" -proto_dist \"*) ;; *) "
        "if [ -n \"$f\" ]; then case $f in /*) ;; *) f=$PWD/$f;; esac; "
        "ERL_FLAGS=\"-proto_dist inet${v}_tls -ssl_dist_optfile $f $ERL_FLAGS\"; "
        "elif [ -n \"$v\" ]; then ERL_FLAGS=\"-proto_dist inet6_tcp $ERL_FLAGS\"; fi;; esac; "
        "ERL_FLAGS=\"+Bi $ERL_FLAGS\" escript \"$0\" \"$@\" <&3 3<&- & p=$!; "
        "trap 'kill -TERM $p 2>/dev/null; t=1' INT TERM HUP; "
        "while :; do t=; wait $p; s=$?; [ -n \"$t\" ] || break; done; exit $s",
    ok = filelib:ensure_dir(Out),
    Tmp = Out ++ ".tmp",
    case escript:create(Tmp, [{shebang, "/bin/sh"}, {comment, Wrapper},
                              {archive, Entries, []}]) of
        ok ->
            {ok, #file_info{mode = Mode}} = file:read_file_info(Tmp),
            ok = file:change_mode(Tmp, Mode bor 8#755),
            ok = file:rename(Tmp, Out);
        {error, Reason} ->
            io:format(standard_error, "mkescript: ~p~n", [Reason]),
            halt(1)
    end;
main(_) ->
    io:format(standard_error, "usage: mkescript.escript OUT EBIN~n", []),
    halt(2).

read(F) ->
    {ok, Bin} = file:read_file(F),
    Bin.
