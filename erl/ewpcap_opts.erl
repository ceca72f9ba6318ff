%%% @doc Validation and normalisation of ewpcap arguments.
%%%
%%% Everything the library sends to ewpcapd is checked here first, one
%%% clause per option, so that a mistake is reported to the caller before
%%% any message leaves the node (ewpcapd checks every request again; see
%%% docs/PROTOCOL.md).
%%%
%%% The rules:
%%% <ul>
%%% <li>A known option with a value of the wrong type, an options argument
%%%     that is not a proper list, or a device or filter that is not iodata
%%%     raises `badarg' (a programmer error).</li>
%%% <li>An unknown option returns `{error, {bad_option, Key}}' (`Key' is the
%%%     option's first element, or the whole term when it is neither an atom
%%%     nor a 2-tuple). The filter options of filter/3 are only
%%%     `optimize', `netmask' and `limit'.</li>
%%% <li>As with proplists, a bare atom `Key' means `{Key, true}', and the
%%%     first occurrence of an option counts (ewpcapd applies the same rule).</li>
%%% <li>Timing, as in the original ewpcap: `timeout' beats `to_ms' (its
%%%     old name, which also takes `immediate' and `infinity') wherever
%%%     each stands; `immediate' then overrides the immediate flag, and
%%%     immediate mode switched off with no timeout given means a 500 ms
%%%     timeout. The result is sent as one `{timeout, T}' option (no
%%%     timing option at all: ewpcapd's default, 1 ms blocks).</li>
%%% <li>filter/2 accepts the options of open/2 too (the same list may be
%%%     used for both, as in the original): they are checked and ignored.</li>
%%% <li>The `badarg' raised for a bad value carries error information
%%%     (`erlang:error/3' with `error_info'): the shell prints which option
%%%     and why, see format_error/2.</li>
%%% <li>A filter longer than its limit returns `{error, enomem}':
%%%     a filter `F' is accepted when `iolist_size(F) < Limit orelse Limit < 0'
%%%     (default `Limit' 8192).</li>
%%% </ul>
%%%
%%% Normalisation: a filter becomes a binary, a `{A, B, C, D}' netmask an
%%% integer, a limit outside the 32-bit range `-1' (the length has already
%%% been checked here, and no filter is that long); every other option is
%%% passed on as given.
%%% @end
-module(ewpcap_opts).

-export([device/1, open/1, filter/2, format_error/2]).

-export_type([reason/0]).

-define(INT_MIN, -16#80000000).
-define(INT_MAX, 16#7FFFFFFF).
-define(DEFAULT_LIMIT, 8192).
-define(DEV_MAX, 255).
-define(ORIGINAL_TO_MS, 500).

-define(is_int(N, Min, Max), (is_integer(N) andalso N >= Min andalso N =< Max)).
-define(is_byte(N), ?is_int(N, 0, 255)).

%% badarg raised in the API function itself, so that the stack's top frame
%% is the call the user made (erlang:error/3 gives that frame Args).
-define(BADARG(Args, Cause),
        erlang:error(badarg, Args, [{error_info, #{module => ?MODULE, cause => Cause}}])).

-type reason() :: {bad_option, term()} | enomem.
%% Why options were refused without raising.

%%% ===================================================================
%%% API
%%% ===================================================================

%% @doc The device name as sent to ewpcapd: `<<>>' stays `<<>>' (ewpcapd
%% opens the first device of `pcap_findalldevs'), `[]' (the empty string)
%% becomes `<<"any">>' (the Linux pseudo device), any other iodata its
%% binary. Raises `badarg' for anything else, and for names that no
%% interface can have (longer than 255 bytes, or holding a NUL byte).
-spec device(iodata() | {file, iodata()}) -> binary() | {file, binary()}.
device({file, Path} = Dev) ->
    case is_iodata(Path) andalso iolist_to_binary(Path) of
        false ->
            ?BADARG([Dev], {device, not_iodata});
        Bin ->
            case byte_size(Bin) > 0 andalso byte_size(Bin) =< 4095 andalso
                binary:match(Bin, <<0>>) =:= nomatch of
                true -> {file, Bin};
                false -> ?BADARG([Dev], {device, bad_path})
            end
    end;
device(<<>>) ->
    <<>>;
device([]) ->
    <<"any">>;
device(Dev) ->
    case is_iodata(Dev) andalso iolist_to_binary(Dev) of
        false ->
            ?BADARG([Dev], {device, not_iodata});
        Bin ->
            case byte_size(Bin) =< ?DEV_MAX andalso binary:match(Bin, <<0>>) =:= nomatch of
                true -> Bin;
                false -> ?BADARG([Dev], {device, bad_name})
            end
    end.

%% @doc Validates and normalises the options of open/2.
%%
%% Returns `{ok, Options}' with the options to send, or
%% `{error, {bad_option, Key}}' for an unknown option, or
%% `{error, enomem}' when a `{filter, F}' is longer than its `{limit, N}'.
%% Raises `badarg' when an option has a value of the wrong type or the
%% argument is not a proper list.
-spec open(ewpcap:options()) -> {ok, [ewpcap:open_option()]} | {error, reason()}.
open(Options) ->
    case validate(Options, fun open_opt/1, []) of
        {ok, Norm0} ->
            Norm = timing(Norm0),
            case lists:keyfind(filter, 1, Norm) of
                {filter, Filter} -> within_limit(Filter, Norm, Norm);
                false -> {ok, Norm}
            end;
        {error, _} = Error ->
            Error;
        {badarg, Cause} ->
            ?BADARG([Options], Cause)
    end.

%% @doc Validates and normalises the arguments of filter/3.
%%
%% Returns `{ok, Filter, Options}' with the filter as a binary and the
%% options to send (only `optimize', `netmask' and `limit': the options
%% of open/2 are checked as there and dropped), or
%% `{error, {bad_option, Key}}' for an unknown option, or
%% `{error, enomem}' when the filter is longer than its limit. Raises
%% `badarg' when the filter is not iodata, an option has a value of the
%% wrong type or the options are not a proper list.
-spec filter(iodata(), ewpcap:filter_options()) ->
    {ok, binary(), [ewpcap:filter_option()]} | {error, reason()}.
filter(Filter, Options) ->
    Checked =
        case is_iodata(Filter) of
            true -> validate(Options, fun open_opt/1, []);
            false -> {badarg, {filter, not_iodata}}
        end,
    case Checked of
        {ok, All} ->
            Bin = iolist_to_binary(Filter),
            Norm = [Opt || {Key, _} = Opt <- All, is_filter_key(Key)],
            case within_limit(Bin, Norm, Norm) of
                {ok, Norm} -> {ok, Bin, Norm};
                {error, _} = Error -> Error
            end;
        {error, _} = Error ->
            Error;
        {badarg, Cause} ->
            ?BADARG([Filter, Options], Cause)
    end.

%% @doc Formats the error information of the `badarg' raised here (see
%% `erl_error:format_exception/3'): which argument, which option, and
%% what it should be.
-spec format_error(term(), erlang:stacktrace()) -> #{pos_integer() | general => string()}.
format_error(_Reason, [{_M, F, Args, Info} | _]) ->
    ErrorInfo = proplists:get_value(error_info, Info, #{}),
    Cause = maps:get(cause, ErrorInfo, none),
    Pos = case {F, Cause, Args} of
              {filter, {filter, _}, _} -> 1;
              {filter, _, _} -> 2;
              _ -> 1
          end,
    #{Pos => describe(Cause)};
format_error(_Reason, _Stack) ->
    #{}.

%%% ===================================================================
%%% Internal functions
%%% ===================================================================

%% {badarg, Cause} for a bad value (the caller raises it with the
%% argument list it was given).
validate([], _Check, Acc) ->
    {ok, lists:reverse(Acc)};
validate([Key | Rest], Check, Acc) when is_atom(Key) ->
    validate([{Key, true} | Rest], Check, Acc);
validate([Opt | Rest], Check, Acc) ->
    case Check(Opt) of
        {ok, Norm} -> validate(Rest, Check, [Norm | Acc]);
        badarg -> {badarg, {option, Opt}};
        {error, _} = Error -> Error
    end;
validate(_, _Check, _Acc) ->
    {badarg, not_a_list}.

describe(not_a_list) ->
    "options must be a proper list of {Key, Value} tuples and atoms";
describe({device, not_iodata}) ->
    "the device must be iodata (a binary or a string) or {file, Path}";
describe({device, bad_name}) ->
    "no interface has this name (longer than 255 bytes, or holding a NUL byte)";
describe({device, bad_path}) ->
    "the file path must be 1 to 4095 bytes without NUL";
describe({filter, not_iodata}) ->
    "the filter must be iodata (a binary or a string)";
describe({option, {Key, Value}}) ->
    lists:flatten(io_lib:format("option ~tp: ~tp is not ~ts", [Key, Value, expected(Key)]));
describe(_) ->
    "bad argument".

expected(promisc) -> "a boolean";
expected(immediate) -> "a boolean";
expected(monitor) -> "a boolean";
expected(optimize) -> "a boolean";
expected(share) -> "a boolean";
expected(relay) -> "a boolean";
expected(snaplen) -> "an integer in 0..2147483647";
expected(timeout) -> "immediate, infinity or an integer in 0..2147483647 (ms)";
expected(to_ms) -> "immediate, infinity or an integer in 0..2147483647 (ms)";
expected(buffer) -> "an integer in -2147483648..2147483647 (bytes)";
expected(time_unit) -> "timestamp, microsecond or nanosecond";
expected(tstamp_precision) -> "micro or nano";
expected(batch) -> "an integer in 1..65536";
expected(dump) -> "a non-empty path (iodata)";
expected(filter) -> "iodata (a binary or a string)";
expected(netmask) -> "an integer in 0..16#FFFFFFFF or an IPv4 tuple {A, B, C, D}";
expected(limit) -> "an integer".

is_filter_key(Key) ->
    Key =:= optimize orelse Key =:= netmask orelse Key =:= limit.

%% The timing options as the original combined them, into one
%% {timeout, T} placed first; none given: none
%% sent (ewpcapd's default).
timing(Norm) ->
    Timeout = lists:keyfind(timeout, 1, Norm),
    ToMs = lists:keyfind(to_ms, 1, Norm),
    Immediate = lists:keyfind(immediate, 1, Norm),
    Rest = [Opt || {Key, _} = Opt <- Norm,
                   Key =/= timeout, Key =/= to_ms, Key =/= immediate],
    T = case {Timeout, ToMs} of
            {{timeout, T0}, _} -> T0;
            {false, {to_ms, T0}} -> T0;
            {false, false} -> undefined
        end,
    case {T, Immediate} of
        {undefined, false} ->
            Rest;
        {_, {immediate, true}} ->
            [{timeout, immediate} | Rest];
        {immediate, {immediate, false}} ->
            [{timeout, ?ORIGINAL_TO_MS} | Rest];
        {undefined, {immediate, false}} ->
            [{timeout, ?ORIGINAL_TO_MS} | Rest];
        {_, _} ->
            [{timeout, T} | Rest]
    end.

%% One clause per option of open/2; the filter options fall through.
open_opt({promisc, B} = Opt) when is_boolean(B) ->
    {ok, Opt};
open_opt({snaplen, N} = Opt) when ?is_int(N, 0, ?INT_MAX) ->
    {ok, Opt};
open_opt({timeout, T} = Opt) when T =:= immediate; T =:= infinity ->
    {ok, Opt};
open_opt({timeout, N} = Opt) when ?is_int(N, 0, ?INT_MAX) ->
    {ok, Opt};
open_opt({to_ms, T} = Opt) when T =:= immediate; T =:= infinity ->
    {ok, Opt};
open_opt({to_ms, N} = Opt) when ?is_int(N, 0, ?INT_MAX) ->
    {ok, Opt};
open_opt({immediate, B} = Opt) when is_boolean(B) ->
    {ok, Opt};
open_opt({buffer, N} = Opt) when ?is_int(N, ?INT_MIN, ?INT_MAX) ->
    {ok, Opt};
open_opt({monitor, B} = Opt) when is_boolean(B) ->
    {ok, Opt};
open_opt({share, B} = Opt) when is_boolean(B) ->
    {ok, Opt};
open_opt({time_unit, U} = Opt) when U =:= timestamp; U =:= microsecond; U =:= nanosecond ->
    {ok, Opt};
open_opt({tstamp_precision, P} = Opt) when P =:= micro; P =:= nano ->
    {ok, Opt};
open_opt({batch, N} = Opt) when ?is_int(N, 1, 65536) ->
    {ok, Opt};
open_opt({relay, B} = Opt) when is_boolean(B) ->
    {ok, Opt};
open_opt({dump, Path}) ->
    case is_iodata(Path) andalso iolist_size(Path) > 0 of
        true -> {ok, {dump, iolist_to_binary(Path)}};
        false -> badarg
    end;
open_opt({filter, F}) ->
    case is_iodata(F) of
        true -> {ok, {filter, iolist_to_binary(F)}};
        false -> badarg
    end;
open_opt({Key, _}) when
    Key =:= promisc;
    Key =:= snaplen;
    Key =:= timeout;
    Key =:= to_ms;
    Key =:= immediate;
    Key =:= buffer;
    Key =:= monitor;
    Key =:= share;
    Key =:= time_unit;
    Key =:= tstamp_precision;
    Key =:= batch;
    Key =:= relay;
    Key =:= dump
->
    badarg;
open_opt(Opt) ->
    filter_opt(Opt).

%% One clause per filter option.
filter_opt({optimize, B} = Opt) when is_boolean(B) ->
    {ok, Opt};
filter_opt({netmask, M} = Opt) when ?is_int(M, 0, 16#FFFFFFFF) ->
    {ok, Opt};
filter_opt({netmask, {A, B, C, D}}) when
    ?is_byte(A), ?is_byte(B), ?is_byte(C), ?is_byte(D)
->
    {ok, {netmask, (A bsl 24) bor (B bsl 16) bor (C bsl 8) bor D}};
filter_opt({limit, N}) when ?is_int(N, ?INT_MIN, ?INT_MAX) ->
    {ok, {limit, N}};
filter_opt({limit, N}) when is_integer(N) ->
    % Checked here against the real value; -1 (no limit) is equivalent
    % for any filter that passed, and fits ewpcapd's C integer.
    {ok, {limit, -1}};
filter_opt({Key, _}) when Key =:= optimize; Key =:= netmask; Key =:= limit ->
    badarg;
filter_opt({Key, _}) ->
    {error, {bad_option, Key}};
filter_opt(Opt) ->
    {error, {bad_option, Opt}}.

%% Norm is the validated option list: its first limit counts. The limit
%% there may have been clamped to -1, so the original option list is not
%% needed: a clamped limit was one that every real filter satisfies.
within_limit(Filter, Norm, Result) ->
    Limit =
        case lists:keyfind(limit, 1, Norm) of
            {limit, N} -> N;
            false -> ?DEFAULT_LIMIT
        end,
    case byte_size(Filter) < Limit orelse Limit < 0 of
        true -> {ok, Result};
        false -> {error, enomem}
    end.

is_iodata(B) when is_binary(B) ->
    true;
is_iodata(L) when is_list(L) ->
    try iolist_size(L) of
        _ -> true
    catch
        error:badarg -> false
    end;
is_iodata(_) ->
    false.
