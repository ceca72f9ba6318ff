%%% @doc Hardening: malformed, unknown and hostile requests to ewpcapd,
%%% one case per row of a table.
%%%
%%% Every case talks to the embedded daemon (ewpcap:node()) with raw calls,
%%% `gen_server:call({ewpcap, Node}, Request, Timeout)', asserts the EXACT
%%% reply, and then asserts that the daemon still answers a good request
%%% (`dev') and that it is the same OS process as before the case
%%% (ewpcap_bad_input).
%%%
%%% The cases of group `rows' are the table rows/0 (one case per row); the
%%% same table is docs/PROTOCOL.md, section "Bad input" (doc_table/0 prints
%%% it), which protocol_doc_matches_daemon checks, with the request table,
%%% against the daemon. Placeholders in a row's request (atoms '$ref',
%%% '$closed', ...) are replaced at run time, see subst/2. The other bad
%%% calls are ewpcap_bad_calls_SUITE's.
%%%
%%% Traffic: only frames written on lo (ethertype 0x88B5, zero MACs).
%%% Every wait is bounded.
%%% @end
-module(ewpcap_bad_input_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include("ewpcap.hrl").

-compile([export_all, nowarn_export_all]).

-import(ewpcap_bad_input, [raw_call/2, assert_reply/2, assert_daemon_alive/1, frame/1,
                            lo_mtu/0, deep/1, long_atom/0, summary/1, receive_all/1, flush/0]).

-define(SYNTAX_ERROR, "can't parse filter expression: syntax error").
-define(METADATA_ERROR, "inbound, outbound, ifindex and other filters of kernel metadata "
                        "need a capture of its own: open with {share, false}").

%% One case per row: Name(Config) runs row Name of rows/0.
-define(ROW(Name), Name(Config) -> row(Name, Config)).

%%% ===================================================================
%%% The table
%%% ===================================================================

%% {Case, Request, Reply}. Reply is the exact reply, `{'$prefix', Reply}'
%% for an `{error, String}' whose text only starts with a known prefix, or
%% `no_reply'.
rows() ->
    [
        %% open
        {open_bare_atom, open, {error, badarg}},
        {open_arity1, {open}, {error, badarg}},
        {open_arity2, {open, <<"lo">>}, {error, badarg}},
        {open_arity5, {open, <<"lo">>, [], '$self', extra}, {error, badarg}},
        {open_large_tuple, '$large_tuple_open', {error, badarg}},
        {open_dev_integer, {open, 1, []}, {error, badarg}},
        {open_dev_atom, {open, lo, []}, {error, badarg}},
        {open_dev_iolist, {open, [<<"lo">>], []}, {error, badarg}},
        {open_dev_not_latin1, {open, [108, 256], []}, {error, badarg}},
        {open_dev_nul, {open, <<"lo", 0>>, []}, {error, badarg}},
        {open_dev_256_bytes, {open, '$dev_256', []}, {error, badarg}},
        {open_dev_1mb, {open, '$bin_1mb', []}, {error, badarg}},
        {open_dev_unknown, {open, <<"ewpnotexist0">>, []}, {error, "No such device exists"}},
        {open_opts_atom, {open, <<"lo">>, notalist}, {error, badarg}},
        {open_opts_map, {open, <<"lo">>, #{snaplen => 100}}, {error, badarg}},
        {open_opts_improper, {open, <<"lo">>, [{snaplen, 100} | foo]}, {error, badarg}},
        {open_opt_bare_atom, {open, <<"lo">>, [promisc]}, {error, badarg}},
        {open_opt_3tuple, {open, <<"lo">>, [{snaplen, 100, 1}]}, {error, badarg}},
        {open_opt_unknown, {open, <<"lo">>, [{foo, 1}]}, {error, badarg}},
        {open_opt_key_string, {open, <<"lo">>, [{"snaplen", 100}]}, {error, badarg}},
        {open_opt_key_long_atom, {open, <<"lo">>, [{'$long_atom', 1}]}, {error, badarg}},
        {open_snaplen_negative, {open, <<"lo">>, [{snaplen, -1}]}, {error, badarg}},
        {open_snaplen_2p31, {open, <<"lo">>, [{snaplen, 16#80000000}]}, {error, badarg}},
        {open_snaplen_bignum, {open, <<"lo">>, [{snaplen, 1 bsl 64}]}, {error, badarg}},
        {open_snaplen_float, {open, <<"lo">>, [{snaplen, 100.0}]}, {error, badarg}},
        {open_snaplen_atom, {open, <<"lo">>, [{snaplen, foo}]}, {error, badarg}},
        {open_promisc_integer, {open, <<"lo">>, [{promisc, 1}]}, {error, badarg}},
        {open_promisc_atom, {open, <<"lo">>, [{promisc, yes}]}, {error, badarg}},
        {open_timeout_negative, {open, <<"lo">>, [{timeout, -5}]}, {error, badarg}},
        {open_timeout_atom, {open, <<"lo">>, [{timeout, soon}]}, {error, badarg}},
        {open_to_ms_infinity, {open, <<"lo">>, [{to_ms, infinity}]}, {error, badarg}},
        {open_immediate_integer, {open, <<"lo">>, [{immediate, 1}]}, {error, badarg}},
        {open_buffer_string, {open, <<"lo">>, [{buffer, "big"}]}, {error, badarg}},
        {open_buffer_2p31, {open, <<"lo">>, [{buffer, 16#80000000}]}, {error, badarg}},
        {open_monitor_atom, {open, <<"lo">>, [{monitor, no}]}, {error, badarg}},
        {open_share_integer, {open, <<"lo">>, [{share, 1}]}, {error, badarg}},
        {open_time_unit_atom, {open, <<"lo">>, [{time_unit, seconds}]}, {error, badarg}},
        {open_tstamp_precision_atom, {open, <<"lo">>, [{tstamp_precision, pico}]}, {error, badarg}},
        {open_filter_integer, {open, <<"lo">>, [{filter, 42}]}, {error, badarg}},
        {open_filter_not_latin1, {open, <<"lo">>, [{filter, [256]}]}, {error, badarg}},
        {open_filter_deep, {open, <<"lo">>, [{filter, '$deep'}]}, {error, badarg}},
        {open_optimize_integer, {open, <<"lo">>, [{optimize, 1}]}, {error, badarg}},
        {open_netmask_3tuple, {open, <<"lo">>, [{netmask, {1, 2, 3}}]}, {error, badarg}},
        {open_netmask_256, {open, <<"lo">>, [{netmask, {256, 0, 0, 0}}]}, {error, badarg}},
        {open_netmask_negative, {open, <<"lo">>, [{netmask, -1}]}, {error, badarg}},
        {open_netmask_2p32, {open, <<"lo">>, [{netmask, 16#100000000}]}, {error, badarg}},
        {open_limit_string, {open, <<"lo">>, [{limit, "8192"}]}, {error, badarg}},
        {open_batch_zero, {open, <<"lo">>, [{batch, 0}]}, {error, badarg}},
        {open_batch_65537, {open, <<"lo">>, [{batch, 65537}]}, {error, badarg}},
        {open_second_occurrence_bad, {open, <<"lo">>, [{snaplen, 100}, {snaplen, foo}]},
         {error, badarg}},
        {open_owner_not_pid, {open, <<"lo">>, [], notapid}, {error, badarg}},
        {open_filter_over_limit, {open, <<"lo">>, [{filter, '$filter_8192'}]}, {error, enomem}},
        {open_filter_syntax, {open, <<"lo">>, [{filter, <<"not a filter">>}]},
         {error, ?SYNTAX_ERROR}},
        {open_filter_metadata, {open, <<"lo">>, [{filter, <<"inbound">>}]},
         {error, ?METADATA_ERROR}},
        %% close
        {close_bare_atom, close, {error, badarg}},
        {close_arity1, {close}, {error, badarg}},
        {close_not_ref, {close, notaref}, {error, badarg}},
        {close_extra, {close, '$ref', extra}, {error, badarg}},
        {close_closed_ref, {close, '$closed'}, {error, ebadf}},
        {close_foreign_ref, {close, '$local_ref'}, {error, ebadf}},
        %% filter
        {filter_arity3, {filter, '$ref', <<"ip">>}, {error, badarg}},
        {filter_not_ref, {filter, notaref, <<"ip">>, []}, {error, badarg}},
        {filter_integer, {filter, '$ref', 1, []}, {error, badarg}},
        {filter_opts_atom, {filter, '$ref', <<"ip">>, notalist}, {error, badarg}},
        {filter_opts_improper, {filter, '$ref', <<"ip">>, [{optimize, true} | x]},
         {error, badarg}},
        {filter_open_option, {filter, '$ref', <<"ip">>, [{snaplen, 100}]}, {error, badarg}},
        {filter_unknown_option, {filter, '$ref', <<"ip">>, [{foo, 1}]}, {error, badarg}},
        {filter_limit_atom, {filter, '$ref', <<"ip">>, [{limit, x}]}, {error, badarg}},
        {filter_optimize_atom, {filter, '$ref', <<"ip">>, [{optimize, maybe}]},
         {error, badarg}},
        {filter_over_limit, {filter, '$ref', <<"ip">>, [{limit, 2}]}, {error, enomem}},
        {filter_syntax, {filter, '$ref', <<"udp port">>, []}, {error, ?SYNTAX_ERROR}},
        {filter_metadata, {filter, '$ref', <<"outbound">>, []}, {error, ?METADATA_ERROR}},
        {filter_closed_ref, {filter, '$closed', <<"ip">>, []}, {error, ebadf}},
        %% write
        {write_arity2, {write, '$ref'}, {error, badarg}},
        {write_integer, {write, '$ref', 1}, {error, badarg}},
        {write_not_ref, {write, notaref, <<>>}, {error, badarg}},
        {write_closed_ref, {write, '$closed', '$frame_60'}, {error, ebadf}},
        {write_empty, {write, '$ref', <<>>},
         {'$prefix', {error, "The number of bytes to be sent must be positive"}}},
        {write_13_bytes, {write, '$ref', '$bin_13'}, {error, "send: Invalid argument"}},
        {write_mtu_plus_14, {write, '$ref', '$frame_mtu_plus_14'}, ok},
        {write_mtu_plus_15, {write, '$ref', '$frame_mtu_plus_15'},
         {error, "send: Message too long"}},
        {write_1mb, {write, '$ref', '$bin_1mb'}, {error, "send: Message too long"}},
        %% stats
        {stats_arity1, {stats}, {error, badarg}},
        {stats_integer, {stats, 1}, {error, badarg}},
        {stats_extra, {stats, '$ref', x}, {error, badarg}},
        {stats_closed_ref, {stats, '$closed'}, {error, ebadf}},
        %% dev, getifaddrs, info
        {dev_arity1, {dev}, {error, badarg}},
        {dev_argument, {dev, 1}, {error, badarg}},
        {getifaddrs_argument, {getifaddrs, 1}, {error, badarg}},
        {info_argument, {info, x}, {error, badarg}},
        %% unknown requests
        {unknown_atom, foo, {error, unknown_request}},
        {unknown_tuple1, {foo}, {error, unknown_request}},
        {unknown_tuple2, {foo, 1}, {error, unknown_request}},
        {unknown_integer, 123, {error, unknown_request}},
        {unknown_float, 3.14, {error, unknown_request}},
        {unknown_binary, <<"bin">>, {error, unknown_request}},
        {unknown_nil, [], {error, unknown_request}},
        {unknown_string, "open", {error, unknown_request}},
        {unknown_empty_tuple, {}, {error, unknown_request}},
        {unknown_pid, '$self', {error, unknown_request}},
        {unknown_map, #{open => <<"lo">>}, {error, unknown_request}},
        {unknown_string_head, {"open", <<"lo">>, []}, {error, unknown_request}},
        {unknown_uppercase, {'OPEN', <<"lo">>, []}, {error, unknown_request}},
        {unknown_long_atom, {'$long_atom', 1}, {error, unknown_request}},
        {unknown_with_fun, {foo, '$fun'}, {error, unknown_request}}
    ].

?ROW(open_bare_atom).
?ROW(open_arity1).
?ROW(open_arity2).
?ROW(open_arity5).
?ROW(open_large_tuple).
?ROW(open_dev_integer).
?ROW(open_dev_atom).
?ROW(open_dev_iolist).
?ROW(open_dev_not_latin1).
?ROW(open_dev_nul).
?ROW(open_dev_256_bytes).
?ROW(open_dev_1mb).
?ROW(open_dev_unknown).
?ROW(open_opts_atom).
?ROW(open_opts_map).
?ROW(open_opts_improper).
?ROW(open_opt_bare_atom).
?ROW(open_opt_3tuple).
?ROW(open_opt_unknown).
?ROW(open_opt_key_string).
?ROW(open_opt_key_long_atom).
?ROW(open_snaplen_negative).
?ROW(open_snaplen_2p31).
?ROW(open_snaplen_bignum).
?ROW(open_snaplen_float).
?ROW(open_snaplen_atom).
?ROW(open_promisc_integer).
?ROW(open_promisc_atom).
?ROW(open_timeout_negative).
?ROW(open_timeout_atom).
?ROW(open_to_ms_infinity).
?ROW(open_immediate_integer).
?ROW(open_buffer_string).
?ROW(open_buffer_2p31).
?ROW(open_monitor_atom).
?ROW(open_share_integer).
?ROW(open_time_unit_atom).
?ROW(open_tstamp_precision_atom).
?ROW(open_filter_integer).
?ROW(open_filter_not_latin1).
?ROW(open_filter_deep).
?ROW(open_optimize_integer).
?ROW(open_netmask_3tuple).
?ROW(open_netmask_256).
?ROW(open_netmask_negative).
?ROW(open_netmask_2p32).
?ROW(open_limit_string).
?ROW(open_batch_zero).
?ROW(open_batch_65537).
?ROW(open_second_occurrence_bad).
?ROW(open_owner_not_pid).
?ROW(open_filter_over_limit).
?ROW(open_filter_syntax).
?ROW(open_filter_metadata).
?ROW(close_bare_atom).
?ROW(close_arity1).
?ROW(close_not_ref).
?ROW(close_extra).
?ROW(close_closed_ref).
?ROW(close_foreign_ref).
?ROW(filter_arity3).
?ROW(filter_not_ref).
?ROW(filter_integer).
?ROW(filter_opts_atom).
?ROW(filter_opts_improper).
?ROW(filter_open_option).
?ROW(filter_unknown_option).
?ROW(filter_limit_atom).
?ROW(filter_optimize_atom).
?ROW(filter_over_limit).
?ROW(filter_syntax).
?ROW(filter_metadata).
?ROW(filter_closed_ref).
?ROW(write_arity2).
?ROW(write_integer).
?ROW(write_not_ref).
?ROW(write_closed_ref).
?ROW(write_empty).
?ROW(write_13_bytes).
?ROW(write_mtu_plus_14).
?ROW(write_mtu_plus_15).
?ROW(write_1mb).
?ROW(stats_arity1).
?ROW(stats_integer).
?ROW(stats_extra).
?ROW(stats_closed_ref).
?ROW(dev_arity1).
?ROW(dev_argument).
?ROW(getifaddrs_argument).
?ROW(info_argument).
?ROW(unknown_atom).
?ROW(unknown_tuple1).
?ROW(unknown_tuple2).
?ROW(unknown_integer).
?ROW(unknown_float).
?ROW(unknown_binary).
?ROW(unknown_nil).
?ROW(unknown_string).
?ROW(unknown_empty_tuple).
?ROW(unknown_pid).
?ROW(unknown_map).
?ROW(unknown_string_head).
?ROW(unknown_uppercase).
?ROW(unknown_long_atom).
?ROW(unknown_with_fun).

%%% ===================================================================
%%% ===================================================================
%%% Common Test callbacks
%%% ===================================================================

suite() ->
    [{timetrap, {minutes, 3}}].

all() ->
    [
        {group, rows},
        protocol_doc_matches_daemon
    ].

groups() ->
    [{rows, [], [Name || {Name, _, _} <- rows()]}].

init_per_suite(Config) ->
    % every row has its case function
    Exports = ?MODULE:module_info(exports),
    ?assertEqual([], [N || {N, _, _} <- rows(), not lists:member({N, 1}, Exports)]),
    ewpcap_bad_input:init_suite(Config).

end_per_suite(Config) ->
    ewpcap_bad_input:end_suite(Config).

init_per_group(_, Config) ->
    Config.

end_per_group(_, _Config) ->
    ok.

init_per_testcase(_Case, Config) ->
    ewpcap_bad_input:init_case(Config).

end_per_testcase(_Case, Config) ->
    ewpcap_bad_input:end_case(Config).

%%% ===================================================================
%%% Rows
%%% ===================================================================

row(Name, Config) ->
    {Name, Request0, Expected} = lists:keyfind(Name, 1, rows()),
    Node = ?config(daemon, Config),
    Request = subst(Request0, Config),
    T0 = erlang:monotonic_time(millisecond),
    Reply = raw_call(Node, Request),
    Ms = erlang:monotonic_time(millisecond) - T0,
    forget(Node, Reply),
    ct:pal("~ts~n-> ~0tp (~p ms)", [show(Request0), Reply, Ms]),
    assert_reply(Expected, Reply),
    assert_daemon_alive(Config).

%% A row that unexpectedly opened a handle: close it again.
forget(Node, {ok, Ref}) when is_reference(Ref) ->
    _ = raw_call(Node, {close, Ref}),
    ok;
forget(_, _) ->
    ok.

%% Placeholders of rows/0.
subst('$ref', Config) -> (?config(live, Config))#ewpcap_resource.ref;
subst('$closed', Config) -> ?config(closed_ref, Config);
subst('$local_ref', _) -> make_ref();
subst('$self', _) -> self();
subst('$fun', _) -> fun() -> ok end;
subst('$deep', _) -> deep(100);
subst('$long_atom', _) -> long_atom();
subst('$large_tuple_open', _) -> list_to_tuple([open, <<"lo">>, [] | lists:duplicate(297, 0)]);
subst('$dev_256', _) -> binary:copy(<<"a">>, 256);
subst('$bin_1mb', _) -> binary:copy(<<0>>, 1 bsl 20);
subst('$bin_13', _) -> binary:copy(<<0>>, 13);
subst('$filter_8192', _) -> list_to_binary(["ip", lists:duplicate(8190, $\s)]);
subst('$frame_60', _) -> frame(60);
subst('$frame_mtu_plus_14', _) -> frame(lo_mtu() + 14);
subst('$frame_mtu_plus_15', _) -> frame(lo_mtu() + 15);
subst(T, Config) when is_tuple(T) -> list_to_tuple(subst(tuple_to_list(T), Config));
subst([H | T], Config) -> [subst(H, Config) | subst(T, Config)];
subst(X, _) -> X.

%% How a placeholder is shown in the table.
placeholder('$ref') -> "Ref";
placeholder('$closed') -> "ClosedRef";
placeholder('$local_ref') -> "make_ref()";
placeholder('$self') -> "self()";
placeholder('$fun') -> "fun() -> ok end";
placeholder('$deep') -> "[[[...]]] (100 deep)";
placeholder('$long_atom') -> "'\\x{1F600}...' (255 characters)";
placeholder('$large_tuple_open') -> "{open, <<\"lo\">>, [], 0, ..., 0} (300 elements)";
placeholder('$dev_256') -> "<<256 bytes>>";
placeholder('$bin_1mb') -> "<<1 MiB>>";
placeholder('$bin_13') -> "<<13 bytes>>";
placeholder('$filter_8192') -> "<<8192 bytes>>";
placeholder('$frame_60') -> "<<60 bytes>>";
placeholder('$frame_mtu_plus_14') -> "<<MTU+14 bytes>>";
placeholder('$frame_mtu_plus_15') -> "<<MTU+15 bytes>>";
placeholder(_) -> false.

show(Term) ->
    S0 = lists:flatten(io_lib:format("~0tp", [Term])),
    Atoms = ['$ref', '$closed', '$local_ref', '$self', '$fun', '$deep', '$long_atom',
             '$large_tuple_open', '$dev_256', '$bin_1mb', '$bin_13', '$filter_8192',
             '$frame_60', '$frame_mtu_plus_14', '$frame_mtu_plus_15'],
    lists:foldl(
        fun(A, S) ->
            Quoted = lists:flatten(io_lib:format("~0tp", [A])),
            lists:flatten(string:replace(S, Quoted, placeholder(A), all))
        end,
        S0, Atoms).

show_reply({'$prefix', {error, Prefix}}) ->
    "`{error, \"" ++ Prefix ++ ": ...\"}` (text after the colon varies: a stale errno)";
show_reply(Reply) ->
    "`" ++ lists:flatten(io_lib:format("~0tp", [Reply])) ++ "`".

%% The table of docs/PROTOCOL.md ("Bad input"), printed.
doc_table() ->
    io:put_chars([[L, $\n] || L <- doc_table_lines()]).

doc_table_lines() ->
    ["| Request | Reply |", "|---|---|"] ++
        ["| `" ++ escape(show(Req)) ++ "` | " ++ escape(show_reply(Reply)) ++ " |"
         || {_, Req, Reply} <- rows()].

escape(S) ->
    lists:flatten(string:replace(S, "|", "\\|", all)).

%%% ===================================================================
%%% The tables of docs/PROTOCOL.md
%%% ===================================================================

protocol_doc_matches_daemon() ->
    [{doc, "docs/PROTOCOL.md: the request table names exactly the requests and arities of "
           "the daemon's table (reqs[] of cnode/decode.c), the daemon knows each of them "
           "(no unknown_request) and no other; the Bad input table is rows/0"}].
protocol_doc_matches_daemon(Config) ->
    Node = ?config(daemon, Config),
    Top = filename:dirname(filename:dirname(code:which(ewpcap))),
    {ok, Doc} = file:read_file(filename:join([Top, "docs", "PROTOCOL.md"])),
    {ok, Src} = file:read_file(filename:join([Top, "cnode", "decode.c"])),
    DocLines = string:split(unicode:characters_to_list(Doc), "\n", all),
    % the first "| Request | Reply |" table: {Name, Arity} per row (an atom: 0)
    Requests = [request_row(L) || L <- table_after("| Request | Reply |", DocLines)],
    % the daemon's table: {"name", EWP_REQ_X, Min, Max} lines of reqs[]
    {match, Reqs} = re:run(Src, "\\{\"([a-z_]+)\", EWP_REQ_[A-Z_]+, ([0-9]+), ([0-9]+)\\}",
                           [global, {capture, all_but_first, list}]),
    Daemon = lists:usort([{list_to_atom(N), A}
                          || [N, Min, Max] <- Reqs,
                             A <- lists:seq(list_to_integer(Min), list_to_integer(Max))]),
    ct:pal("PROTOCOL.md requests ~p~ndaemon's table ~p", [Requests, Daemon]),
    ?assert(length(Daemon) >= 9),
    ?assertEqual(Daemon, lists:usort(Requests)),
    % and the running daemon knows each of them (badarg or an answer, not
    % unknown_request); a name not in the table is unknown
    Probe = fun({Name, 0}) -> Name;
               ({Name, Arity}) -> list_to_tuple([Name | lists:duplicate(Arity - 1, x)])
            end,
    Unknown = [R || R <- Requests, raw_call(Node, Probe(R)) =:= {error, unknown_request}],
    ?assertEqual([], Unknown),
    ?assertEqual({error, unknown_request}, raw_call(Node, {ewp_not_a_request, x, x})),
    % the Bad input table is the suite's rows/0, row for row (the doc marks
    % some replies with a footnote, " \x{2020}")
    BadInput = table_after("| Request | Reply |",
                           lists:dropwhile(fun(L) -> L =/= "## Bad input" end, DocLines), header),
    ?assertEqual(doc_table_lines(), [lists:flatten(string:replace(L, " \x{2020}", "", all))
                                     || L <- BadInput]).

table_after(Header, Lines) ->
    [L || L <- table_after(Header, Lines, header), not lists:prefix("|---", L),
          L =/= Header].

table_after(Header, Lines, header) ->
    [Header | Rest] = lists:dropwhile(fun(L) -> string:trim(L) =/= Header end, Lines),
    [Header | lists:takewhile(fun(L) -> lists:prefix("|", L) end, Rest)].

%% "| `{open, Dev, Options}` | ..." -> {open, 3}; "| `dev` | ..." -> {dev, 0}
request_row(Line) ->
    {match, [Term]} = re:run(Line, "^\\| `([^`]*)`", [{capture, all_but_first, list}]),
    case Term of
        "{" ++ Inner ->
            [Name | Args] = string:split(string:trim(Inner, trailing, "}"), ",", all),
            {list_to_atom(string:trim(Name)), 1 + length(Args)};
        Atom ->
            {list_to_atom(Atom), 0}
    end.
