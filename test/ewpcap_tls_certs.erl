%%% @doc Certificates and optfiles for the TLS tests, made with the
%%% `openssl' command (ECDSA P-256, valid two days): a CA, a node
%%% certificate for every address of the bed (as IP and as DNS entries of
%%% subjectAltName: OTP 25 checks the host part of the node name against
%%% them), and a second, rogue CA with a certificate of its own. Optfiles
%%% (`-ssl_dist_optfile') for the good client, a client without
%%% certificate, and the rogue one.
%%% @end
-module(ewpcap_tls_certs).

-export([make/1]).

%% @doc Makes them all in Dir; returns a map of their paths:
%% `{pem, Name}', `{key, Name}' and `{optfile, good | nocert | rogue}'.
-spec make(file:filename()) -> #{term() => file:filename()}.
make(Dir) ->
    F = fun(Name, Ext) -> filename:join(Dir, Name ++ Ext) end,
    Sans = "subjectAltName=IP:10.77.1.1,IP:10.77.1.2,IP:127.0.0.1,IP:::1,"
           "DNS:10.77.1.1,DNS:10.77.1.2,DNS:127.0.0.1,DNS:localhost",
    [ca(F, Ca) || Ca <- ["ca", "rogue_ca"]],
    leaf(F, "node", "ca", Sans),
    leaf(F, "rogue", "rogue_ca", Sans),
    Server = [{certfile, F("node", ".pem")}, {keyfile, F("node", ".key")},
              {cacertfile, F("ca", ".pem")}, {verify, verify_peer},
              {fail_if_no_peer_cert, true}, {secure_renegotiate, true}],
    Client = fun(Leaf) ->
        [O || Leaf =/= none, O <- [{certfile, F(Leaf, ".pem")}, {keyfile, F(Leaf, ".key")}]] ++
            [{cacertfile, F("ca", ".pem")}, {verify, verify_peer}, {secure_renegotiate, true}]
    end,
    Optfile = fun(Kind, Leaf) ->
        Path = F("optfile_" ++ atom_to_list(Kind), ".conf"),
        ok = file:write_file(Path, io_lib:format("~tp.~n", [[{server, Server},
                                                              {client, Client(Leaf)}]])),
        {{optfile, Kind}, Path}
    end,
    maps:from_list([{{pem, N}, F(N, ".pem")} || N <- ["ca", "node", "rogue"]] ++
                   [{{key, N}, F(N, ".key")} || N <- ["node", "rogue"]] ++
                   [Optfile(good, "node"), Optfile(nocert, none), Optfile(rogue, "rogue")]).

ca(F, Name) ->
    openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", F(Name, ".key"), "-out", F(Name, ".pem"), "-days", "2",
             "-subj", "/CN=ewpcap test " ++ Name]).

leaf(F, Name, Ca, Sans) ->
    openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", F(Name, ".key"), "-out", F(Name, ".csr"), "-subj", "/CN=" ++ Name,
             "-addext", Sans]),
    openssl(["x509", "-req", "-in", F(Name, ".csr"), "-CA", F(Ca, ".pem"), "-CAkey", F(Ca, ".key"),
             "-set_serial", integer_to_list(rand:uniform(1 bsl 30)), "-days", "2",
             "-copy_extensions", "copy", "-out", F(Name, ".pem")]).

openssl(Args) ->
    case ewpcap_testbed:os_cmd("openssl", Args) of
        {0, _} -> ok;
        Other -> erlang:error({openssl, Args, Other})
    end.
