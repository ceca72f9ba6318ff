%%% @doc ewpcap_extcap's interfaces: the generic `ewpcap' interface,
%%% configured by its arguments, and one per entry of the configuration
%%% file, so that Wireshark lists a cluster's capture devices by name.
%%%
%%% The file (`/etc/ewpcap/extcap.conf', or `$EWPCAP_EXTCAP_CONF') holds
%%% Erlang terms, read with file:consult/1 (`%' starts a comment):
%%%
%%% ```
%%% {interface, 'pcap@capturehost', "eth0"}.
%%% {interface, 'pcap@10.0.0.2', "any", [{display, "edge router, all devices"},
%%%                                      {cookie_file, "/etc/ewpcap/cookie"},
%%%                                      {tls_optfile, "/etc/ewpcap/client.conf"},
%%%                                      {snaplen, 1600}, {filter, "not port 22"}]}.
%%% '''
%%%
%%% Each entry is the interface `ewpcap:NODE:DEVICE'; its options are the
%%% defaults of its arguments in Wireshark (see ewpcap_extcap). A missing
%%% default file means no entries; anything else wrong is an error naming
%%% the file and the entry.
%%% @end
-module(ewpcap_extcap_conf).

-export([path/0, read/0, read/1, generic/0, find/2]).

-export_type([iface/0]).

-define(DEFAULT_PATH, "/etc/ewpcap/extcap.conf").
-define(ENV, "EWPCAP_EXTCAP_CONF").
-define(MAX_SNAPLEN, 262144).

-type iface() :: #{value := string(),             % the interface's name in Wireshark
                   display := string(),           % its description there
                   node := node() | undefined,    % undefined: from --node
                   device := string() | undefined, % undefined: from --device
                   defaults := #{atom() => term()}}. % the options of the entry
%% An interface.

%%% ===================================================================
%%% API
%%% ===================================================================

%% @doc The configuration file: `$EWPCAP_EXTCAP_CONF' when set and not
%% empty, else `/etc/ewpcap/extcap.conf'.
-spec path() -> {env | default, file:filename()}.
path() ->
    case os:getenv(?ENV) of
        Unset when Unset =:= false; Unset =:= "" -> {default, ?DEFAULT_PATH};
        P -> {env, P}
    end.

%% @doc The interfaces: the generic one, then those of the file of path/0.
-spec read() -> {ok, [iface(), ...]} | {error, string()}.
read() ->
    case path() of
        {default, P} ->
            case filelib:is_file(P) of
                true -> read(P);
                false -> {ok, [generic()]}
            end;
        {env, P} ->
            read(P)
    end.

%% @doc The interfaces with the entries of the file `Path'.
-spec read(file:filename()) -> {ok, [iface(), ...]} | {error, string()}.
read(Path) ->
    case file:consult(Path) of
        {ok, Terms} ->
            try
                Entries = [entry(T) || T <- Terms],
                ok = unique(Entries),
                {ok, [generic() | Entries]}
            catch
                throw:{bad, Fmt, Args} ->
                    % one line: ~tp breaks long terms
                    Text = io_lib:format("~ts: " ++ Fmt, [Path | Args]),
                    {error, unicode:characters_to_list(
                              re:replace(Text, "\\s*\n\\s*", " ", [global, unicode]))}
            end;
        {error, {Line, Mod, Term}} ->
            {error, lists:flatten(io_lib:format("~ts:~w: ~ts", [Path, Line, Mod:format_error(Term)]))};
        {error, Posix} ->
            {error, lists:flatten(io_lib:format("~ts: ~ts", [Path, file:format_error(Posix)]))}
    end.

%% @doc The generic interface `ewpcap': node and device from its
%% arguments (an iface(); no -spec: dialyzer's -Wunderspecs wants the
%% literal's own type).
generic() ->
    #{value => "ewpcap", display => "ewpcap: remote capture through ewpcapd",
      node => undefined, device => undefined, defaults => #{}}.

%% @doc The interface named `Value'.
-spec find(string(), [iface()]) -> {ok, iface()} | error.
find(Value, Ifaces) ->
    case [I || #{value := V} = I <- Ifaces, V =:= Value] of
        [I | _] -> {ok, I};
        [] -> error
    end.

%%% ===================================================================
%%% Internal functions
%%% ===================================================================

entry({interface, Node, Dev}) ->
    entry({interface, Node, Dev, []});
entry({interface, Node, Dev, Opts} = T) when is_atom(Node), is_list(Opts) ->
    case string:split(atom_to_list(Node), "@") of
        [[_ | _], [_ | _]] -> ok;
        _ -> bad("~tp: the node is not NAME@HOST", [T])
    end,
    is_text(Dev) andalso Dev =/= "" orelse bad("~tp: the device is not a non-empty string", [T]),
    Defaults = maps:from_list([option(T, O) || O <- Opts]),
    Value = "ewpcap:" ++ atom_to_list(Node) ++ ":" ++ Dev,
    Display = maps:get(display, Defaults, Dev ++ " on " ++ atom_to_list(Node)),
    #{value => Value, display => Display, node => Node, device => Dev,
      defaults => maps:remove(display, Defaults)};
entry(T) ->
    bad("~tp: not {interface, 'NAME@HOST', \"DEVICE\"[, Options]}", [T]).

option(_T, {display, S} = O) when S =/= "" -> text(O);
option(_T, {cookie, A}) when is_atom(A) -> text({cookie, atom_to_list(A)});
option(_T, {cookie, S} = O) when S =/= "" -> text(O);
option(_T, {cookie_file, _} = O) -> text(O);
option(_T, {tls_optfile, _} = O) -> text(O);
option(_T, {filter, _} = O) -> text(O);
option(_T, {snaplen, N} = O) when is_integer(N), N >= 1, N =< ?MAX_SNAPLEN -> O;
option(_T, {promisc, B} = O) when is_boolean(B) -> O;
option(T, O) ->
    bad("~tp: bad option ~tp (display, cookie, cookie_file, tls_optfile, filter: strings;"
        " snaplen: 1..~b; promisc: boolean)", [T, O, ?MAX_SNAPLEN]).

%% Strings end up inside Wireshark's `{key=value}' sentences: no braces,
%% no control characters.
text({Key, S} = O) ->
    is_text(S) orelse bad("option ~tp: not a string", [O]),
    case [C || C <- S, C =:= ${ orelse C =:= $} orelse C < 32] of
        [] -> {Key, S};
        _ -> bad("option ~tp: braces and control characters cannot be passed to Wireshark", [O])
    end.

is_text(S) ->
    is_list(S) andalso io_lib:printable_unicode_list(S).

unique(Entries) ->
    Values = [V || #{value := V} <- Entries],
    case Values -- lists:usort(Values) of
        [] -> ok;
        [V | _] -> bad("~ts is listed twice", [V])
    end.

-spec bad(io:format(), [term()]) -> no_return().
bad(Fmt, Args) ->
    throw({bad, Fmt, Args}).
