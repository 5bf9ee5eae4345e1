//! Transcript tests of the room engine: client frames and clock steps in, every effect out.
//! Refresh the expected transcripts with `UPDATE_EXPECT=1 cargo test -p rtcroom-core`, then
//! read the diff: the transcript is the specification.

mod harness;

use expect_test::{Expect, expect};
use harness::{World, join, join_with_key};
use rtcroom_core::{AuthMode, EngineConfig, Grant, Millis};

fn check(cfg: EngineConfig, script: &str, expected: Expect) {
    let mut w = World::new(cfg);
    expected.assert_eq(&w.run(script));
}

fn cfg() -> EngineConfig {
    EngineConfig::default()
}

#[test]
fn two_party_call() {
    let script = format!(
        r#"
        open a
        a> {ja}
        +1s
        open b 198.51.100.7
        b> {jb}
        a> {{"cmd":"offer","remoteUid":"bob","msg":"{{\"type\":\"offer\",\"sdp\":\"v=0\"}}"}}
        b> {{"cmd":"answer","remoteUid":"alice","msg":{{"type":"answer","sdp":"v=0"}}}}
        a> {{"cmd":"candidate","remoteUid":"bob","msg":{{"candidate":"candidate:1 1 udp 1 10.0.0.1 5 typ host","sdpMid":"0","sdpMLineIndex":0}}}}
        b> {{"cmd":"peerConnected","remoteUid":"alice","connectType":"STUN"}}
        a> {{"cmd":"peerConnected","remoteUid":"bob","connectType":"STUN"}}
        +5s
        a> {{"cmd":"keepLive","uid":"alice","roomId":"22"}}
        b> {{"cmd":"reportStats","remoteId":"alice","audio":{{"recv":{{"bitRate":39,"packetsLostRate":"0.00"}}}},"video":{{"recv":{{"bitRate":607,"packetsLostRate":0.5}}}}}}
        +30s
        b> {{"cmd":"leave","uid":"bob"}}
        a> {{"cmd":"leave"}}
        "#,
        ja = join("22", "alice"),
        jb = join("22", "bob"),
    );
    check(
        cfg(),
        &script,
        expect![[r##"
        open a
        a> {"cmd":"join","appId":"10000","token":"t","roomId":"22","roomName":"talk-now","uid":"alice","uname":"alice_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          rec session+ #1 10000/22 uid=alice uname=alice_name ip=192.0.2.1 os=Win32 browser=chrome58.0 sdk=1.0.0 t=0s
          a< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"22","roomName":"talk-now","uid":"alice","uname":"alice_name","sessionId":"#1","reportStatsInterval":15,"userList":null,"resumeKey":"$key(alice)","heartbeatTimeout":40,"resumed":false}
        +1s
        open b 198.51.100.7
        b> {"cmd":"join","appId":"10000","token":"t","roomId":"22","roomName":"talk-now","uid":"bob","uname":"bob_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          rec session+ #2 10000/22 uid=bob uname=bob_name ip=198.51.100.7 os=Win32 browser=chrome58.0 sdk=1.0.0 t=1s
          rec sub+ #3 of #1 alice->bob t=1s
          rec sub+ #4 of #2 bob->alice t=1s
          b< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"22","roomName":"talk-now","uid":"bob","uname":"bob_name","sessionId":"#2","reportStatsInterval":15,"userList":[{"appId":"10000","uid":"alice","uname":"alice_name","userType":0,"talkType":1}],"resumeKey":"$key(bob)","heartbeatTimeout":40,"resumed":false}
          a< {"cmd":"notifyNewPeer","uid":"bob","uname":"bob_name","userType":0,"talkType":1,"rtcConfig":{"bundlePolicy":"max-bundle","iceServers":[],"iceTransportPolicy":"all","rtcpMuxPolicy":"require"}}
        a> {"cmd":"offer","remoteUid":"bob","msg":"{\"type\":\"offer\",\"sdp\":\"v=0\"}"}
          b< {"cmd":"relayOffer","uid":"alice","uname":"alice_name","remoteUid":"bob","subSessionId":"#4","msg":"{\"type\":\"offer\",\"sdp\":\"v=0\"}","rtcConfig":{"bundlePolicy":"max-bundle","iceServers":[],"iceTransportPolicy":"all","rtcpMuxPolicy":"require"},"isIceReset":false}
          a< {"cmd":"respOffer","remoteUid":"bob","result":0,"desc":"ok","subSessionId":"#3"}
          rec sub-begin #3 t=1s
        b> {"cmd":"answer","remoteUid":"alice","msg":{"type":"answer","sdp":"v=0"}}
          a< {"cmd":"relayAnswer","connectType":0,"uid":"bob","uname":"bob_name","remoteUid":"alice","msg":{"type":"answer","sdp":"v=0"}}
          rec sub-begin #4 t=1s
        a> {"cmd":"candidate","remoteUid":"bob","msg":{"candidate":"candidate:1 1 udp 1 10.0.0.1 5 typ host","sdpMid":"0","sdpMLineIndex":0}}
          b< {"cmd":"relayCandidate","uid":"alice","uname":"alice_name","remoteUid":"bob","msg":{"candidate":"candidate:1 1 udp 1 10.0.0.1 5 typ host","sdpMid":"0","sdpMLineIndex":0}}
        b> {"cmd":"peerConnected","remoteUid":"alice","connectType":"STUN"}
          b< {"cmd":"respPeerConnected","uid":"bob","uname":"bob_name","remoteUid":"alice","result":0,"desc":"ok"}
          rec sub-connect #4 t=1s STUN
        a> {"cmd":"peerConnected","remoteUid":"bob","connectType":"STUN"}
          a< {"cmd":"respPeerConnected","uid":"alice","uname":"alice_name","remoteUid":"bob","result":0,"desc":"ok"}
          rec sub-connect #3 t=1s STUN
        +5s
        a> {"cmd":"keepLive","uid":"alice","roomId":"22"}
          a< {"cmd":"respKeepLive","result":0,"desc":"ok"}
        b> {"cmd":"reportStats","remoteId":"alice","audio":{"recv":{"bitRate":39,"packetsLostRate":"0.00"}},"video":{"recv":{"bitRate":607,"packetsLostRate":0.5}}}
          rec quality #5 sub=#4 bob->alice aud_rcv=39kbps/0 vid_rcv=607kbps/0.5
        +30s
        b> {"cmd":"leave","uid":"bob"}
          b< {"cmd":"respLeave","uid":"bob","uname":"bob_name","userType":0,"result":0,"desc":"ok"}
          a< {"cmd":"relayLeave","uid":"bob","uname":"bob_name","userType":0}
          rec sub- #4 t=36s duration=35s status=0 cost=0
          rec sub- #3 t=36s duration=35s status=0 cost=0
          rec session- #2 t=36s duration=35s timed_out=false
        a> {"cmd":"leave"}
          a< {"cmd":"respLeave","uid":"alice","uname":"alice_name","userType":0,"result":0,"desc":"ok"}
          rec session- #1 t=36s duration=36s timed_out=false
    "##]],
    );
}

#[test]
fn three_party_call_full_room_and_leave() {
    let script = format!(
        r#"
        open a
        a> {ja}
        open b
        b> {jb}
        open c
        c> {jc}
        open d
        d> {jd}
        c> {{"cmd":"leave"}}
        d> {jd}
        "#,
        ja = join("r", "alice"),
        jb = join("r", "bob"),
        jc = join("r", "carol"),
        jd = join("r", "dave"),
    );
    check(
        cfg(),
        &script,
        expect![[r##"
        open a
        a> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"alice","uname":"alice_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          rec session+ #1 10000/r uid=alice uname=alice_name ip=192.0.2.1 os=Win32 browser=chrome58.0 sdk=1.0.0 t=0s
          a< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r","roomName":"talk-now","uid":"alice","uname":"alice_name","sessionId":"#1","reportStatsInterval":15,"userList":null,"resumeKey":"$key(alice)","heartbeatTimeout":40,"resumed":false}
        open b
        b> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"bob","uname":"bob_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          rec session+ #2 10000/r uid=bob uname=bob_name ip=192.0.2.1 os=Win32 browser=chrome58.0 sdk=1.0.0 t=0s
          rec sub+ #3 of #1 alice->bob t=0s
          rec sub+ #4 of #2 bob->alice t=0s
          b< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r","roomName":"talk-now","uid":"bob","uname":"bob_name","sessionId":"#2","reportStatsInterval":15,"userList":[{"appId":"10000","uid":"alice","uname":"alice_name","userType":0,"talkType":1}],"resumeKey":"$key(bob)","heartbeatTimeout":40,"resumed":false}
          a< {"cmd":"notifyNewPeer","uid":"bob","uname":"bob_name","userType":0,"talkType":1,"rtcConfig":{"bundlePolicy":"max-bundle","iceServers":[],"iceTransportPolicy":"all","rtcpMuxPolicy":"require"}}
        open c
        c> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"carol","uname":"carol_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          rec session+ #5 10000/r uid=carol uname=carol_name ip=192.0.2.1 os=Win32 browser=chrome58.0 sdk=1.0.0 t=0s
          rec sub+ #6 of #1 alice->carol t=0s
          rec sub+ #7 of #5 carol->alice t=0s
          rec sub+ #8 of #2 bob->carol t=0s
          rec sub+ #9 of #5 carol->bob t=0s
          c< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r","roomName":"talk-now","uid":"carol","uname":"carol_name","sessionId":"#5","reportStatsInterval":15,"userList":[{"appId":"10000","uid":"alice","uname":"alice_name","userType":0,"talkType":1},{"appId":"10000","uid":"bob","uname":"bob_name","userType":0,"talkType":1}],"resumeKey":"$key(carol)","heartbeatTimeout":40,"resumed":false}
          a< {"cmd":"notifyNewPeer","uid":"carol","uname":"carol_name","userType":0,"talkType":1,"rtcConfig":{"bundlePolicy":"max-bundle","iceServers":[],"iceTransportPolicy":"all","rtcpMuxPolicy":"require"}}
          b< {"cmd":"notifyNewPeer","uid":"carol","uname":"carol_name","userType":0,"talkType":1,"rtcConfig":{"bundlePolicy":"max-bundle","iceServers":[],"iceTransportPolicy":"all","rtcpMuxPolicy":"require"}}
        open d
        d> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"dave","uname":"dave_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          d< {"cmd":"respJoin","result":1,"desc":"room is full, it up to max number:3","roomId":"r","roomName":"","uid":"dave","uname":"","sessionId":"","reportStatsInterval":15,"userList":null,"resumeKey":"","heartbeatTimeout":0,"resumed":false}
        c> {"cmd":"leave"}
          c< {"cmd":"respLeave","uid":"carol","uname":"carol_name","userType":0,"result":0,"desc":"ok"}
          a< {"cmd":"relayLeave","uid":"carol","uname":"carol_name","userType":0}
          b< {"cmd":"relayLeave","uid":"carol","uname":"carol_name","userType":0}
          rec sub- #7 t=0s duration=0s status=2 cost=0
          rec sub- #9 t=0s duration=0s status=2 cost=0
          rec sub- #6 t=0s duration=0s status=2 cost=0
          rec sub- #8 t=0s duration=0s status=2 cost=0
          rec session- #5 t=0s duration=0s timed_out=false
        d> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"dave","uname":"dave_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          rec session+ #10 10000/r uid=dave uname=dave_name ip=192.0.2.1 os=Win32 browser=chrome58.0 sdk=1.0.0 t=0s
          rec sub+ #11 of #1 alice->dave t=0s
          rec sub+ #12 of #10 dave->alice t=0s
          rec sub+ #13 of #2 bob->dave t=0s
          rec sub+ #14 of #10 dave->bob t=0s
          d< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r","roomName":"talk-now","uid":"dave","uname":"dave_name","sessionId":"#10","reportStatsInterval":15,"userList":[{"appId":"10000","uid":"alice","uname":"alice_name","userType":0,"talkType":1},{"appId":"10000","uid":"bob","uname":"bob_name","userType":0,"talkType":1}],"resumeKey":"$key(dave)","heartbeatTimeout":40,"resumed":false}
          a< {"cmd":"notifyNewPeer","uid":"dave","uname":"dave_name","userType":0,"talkType":1,"rtcConfig":{"bundlePolicy":"max-bundle","iceServers":[],"iceTransportPolicy":"all","rtcpMuxPolicy":"require"}}
          b< {"cmd":"notifyNewPeer","uid":"dave","uname":"dave_name","userType":0,"talkType":1,"rtcConfig":{"bundlePolicy":"max-bundle","iceServers":[],"iceTransportPolicy":"all","rtcpMuxPolicy":"require"}}
    "##]],
    );
}

#[test]
fn heartbeat_timeout_removes_the_silent_member() {
    let script = format!(
        r#"
        open a
        a> {ja}
        open b
        b> {jb}
        a> {{"cmd":"offer","remoteUid":"bob","msg":"{{}}"}}
        b> {{"cmd":"peerConnected","remoteUid":"alice","connectType":"TURN"}}
        +30s
        b> {{"cmd":"keepLive"}}
        +10s
        +1s
        "#,
        ja = join("r", "alice"),
        jb = join("r", "bob"),
    );
    check(
        cfg(),
        &script,
        expect![[r##"
        open a
        a> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"alice","uname":"alice_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          rec session+ #1 10000/r uid=alice uname=alice_name ip=192.0.2.1 os=Win32 browser=chrome58.0 sdk=1.0.0 t=0s
          a< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r","roomName":"talk-now","uid":"alice","uname":"alice_name","sessionId":"#1","reportStatsInterval":15,"userList":null,"resumeKey":"$key(alice)","heartbeatTimeout":40,"resumed":false}
        open b
        b> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"bob","uname":"bob_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          rec session+ #2 10000/r uid=bob uname=bob_name ip=192.0.2.1 os=Win32 browser=chrome58.0 sdk=1.0.0 t=0s
          rec sub+ #3 of #1 alice->bob t=0s
          rec sub+ #4 of #2 bob->alice t=0s
          b< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r","roomName":"talk-now","uid":"bob","uname":"bob_name","sessionId":"#2","reportStatsInterval":15,"userList":[{"appId":"10000","uid":"alice","uname":"alice_name","userType":0,"talkType":1}],"resumeKey":"$key(bob)","heartbeatTimeout":40,"resumed":false}
          a< {"cmd":"notifyNewPeer","uid":"bob","uname":"bob_name","userType":0,"talkType":1,"rtcConfig":{"bundlePolicy":"max-bundle","iceServers":[],"iceTransportPolicy":"all","rtcpMuxPolicy":"require"}}
        a> {"cmd":"offer","remoteUid":"bob","msg":"{}"}
          b< {"cmd":"relayOffer","uid":"alice","uname":"alice_name","remoteUid":"bob","subSessionId":"#4","msg":"{}","rtcConfig":{"bundlePolicy":"max-bundle","iceServers":[],"iceTransportPolicy":"all","rtcpMuxPolicy":"require"},"isIceReset":false}
          a< {"cmd":"respOffer","remoteUid":"bob","result":0,"desc":"ok","subSessionId":"#3"}
          rec sub-begin #3 t=0s
        b> {"cmd":"peerConnected","remoteUid":"alice","connectType":"TURN"}
          b< {"cmd":"respPeerConnected","uid":"bob","uname":"bob_name","remoteUid":"alice","result":0,"desc":"ok"}
          rec sub-connect #4 t=0s TURN
        +30s
        b> {"cmd":"keepLive"}
          b< {"cmd":"respKeepLive","result":0,"desc":"ok"}
        +10s
          b< {"cmd":"relayLeave","uid":"alice","uname":"alice_name","userType":0}
          rec sub- #3 t=40s duration=0s status=3 cost=0
          rec sub- #4 t=40s duration=40s status=1 cost=1
          rec session- #1 t=40s duration=40s timed_out=true
          a closed 4002 no message within the heartbeat timeout
        +1s
    "##]],
    );
}

#[test]
fn a_dropped_member_keeps_its_place_and_resumes_with_its_key() {
    let script = format!(
        r#"
        open a
        a> {ja}
        open b
        b> {jb}
        drop b
        a> {{"cmd":"offer","remoteUid":"bob","msg":"{{}}"}}
        +10s
        # the same uid without its resume key, or with another, takes nobody's place
        open x
        x> {jb}
        x> {jb_wrong}
        open b2
        b2> {jb_key}
        a> {{"cmd":"offer","remoteUid":"bob","msg":"{{}}"}}
        # the key also moves a live member to a new connection; the old one is closed
        open b3
        b3> {jb_key}
        b2> {{"cmd":"keepLive"}}
        # the connection a member is on may join again without its key (the others re-offer)
        b3> {jb}
        "#,
        ja = join("r", "alice"),
        jb = join("r", "bob"),
        jb_key = join_with_key("r", "bob", "$key(bob)"),
        jb_wrong = join_with_key("r", "bob", "0123456789abcdef0123456789abcdef"),
    );
    check(
        cfg(),
        &script,
        expect![[r##"
        open a
        a> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"alice","uname":"alice_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          rec session+ #1 10000/r uid=alice uname=alice_name ip=192.0.2.1 os=Win32 browser=chrome58.0 sdk=1.0.0 t=0s
          a< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r","roomName":"talk-now","uid":"alice","uname":"alice_name","sessionId":"#1","reportStatsInterval":15,"userList":null,"resumeKey":"$key(alice)","heartbeatTimeout":40,"resumed":false}
        open b
        b> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"bob","uname":"bob_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          rec session+ #2 10000/r uid=bob uname=bob_name ip=192.0.2.1 os=Win32 browser=chrome58.0 sdk=1.0.0 t=0s
          rec sub+ #3 of #1 alice->bob t=0s
          rec sub+ #4 of #2 bob->alice t=0s
          b< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r","roomName":"talk-now","uid":"bob","uname":"bob_name","sessionId":"#2","reportStatsInterval":15,"userList":[{"appId":"10000","uid":"alice","uname":"alice_name","userType":0,"talkType":1}],"resumeKey":"$key(bob)","heartbeatTimeout":40,"resumed":false}
          a< {"cmd":"notifyNewPeer","uid":"bob","uname":"bob_name","userType":0,"talkType":1,"rtcConfig":{"bundlePolicy":"max-bundle","iceServers":[],"iceTransportPolicy":"all","rtcpMuxPolicy":"require"}}
        drop b
        a> {"cmd":"offer","remoteUid":"bob","msg":"{}"}
          a< {"cmd":"respOffer","remoteUid":"bob","result":6,"desc":"can't find the remote user id: the remote user's connection dropped; it may rejoin shortly","subSessionId":""}
        +10s
        open x
        x> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"bob","uname":"bob_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          x< {"cmd":"respJoin","result":13,"desc":"not allowed: uid bob is in this room; a reconnect must carry its resumeKey","roomId":"r","roomName":"","uid":"bob","uname":"","sessionId":"","reportStatsInterval":15,"userList":null,"resumeKey":"","heartbeatTimeout":0,"resumed":false}
        x> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"bob","uname":"bob_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0","resumeKey":"0123456789abcdef0123456789abcdef"}
          x< {"cmd":"respJoin","result":13,"desc":"not allowed: resumeKey is not uid bob's","roomId":"r","roomName":"","uid":"bob","uname":"","sessionId":"","reportStatsInterval":15,"userList":null,"resumeKey":"","heartbeatTimeout":0,"resumed":false}
        open b2
        b2> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"bob","uname":"bob_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0","resumeKey":"$key(bob)"}
          b2< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r","roomName":"talk-now","uid":"bob","uname":"bob_name","sessionId":"#2","reportStatsInterval":15,"userList":[{"appId":"10000","uid":"alice","uname":"alice_name","userType":0,"talkType":1}],"resumeKey":"$key(bob)","heartbeatTimeout":40,"resumed":true}
        a> {"cmd":"offer","remoteUid":"bob","msg":"{}"}
          b2< {"cmd":"relayOffer","uid":"alice","uname":"alice_name","remoteUid":"bob","subSessionId":"#4","msg":"{}","rtcConfig":{"bundlePolicy":"max-bundle","iceServers":[],"iceTransportPolicy":"all","rtcpMuxPolicy":"require"},"isIceReset":false}
          a< {"cmd":"respOffer","remoteUid":"bob","result":0,"desc":"ok","subSessionId":"#3"}
          rec sub-begin #3 t=10s
        open b3
        b3> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"bob","uname":"bob_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0","resumeKey":"$key(bob)"}
          b2 closed 4001 replaced by a newer connection of the same uid
          b3< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r","roomName":"talk-now","uid":"bob","uname":"bob_name","sessionId":"#2","reportStatsInterval":15,"userList":[{"appId":"10000","uid":"alice","uname":"alice_name","userType":0,"talkType":1}],"resumeKey":"$key(bob)","heartbeatTimeout":40,"resumed":true}
        b2> {"cmd":"keepLive"}
        b3> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"bob","uname":"bob_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          b3< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r","roomName":"talk-now","uid":"bob","uname":"bob_name","sessionId":"#2","reportStatsInterval":15,"userList":[{"appId":"10000","uid":"alice","uname":"alice_name","userType":0,"talkType":1}],"resumeKey":"$key(bob)","heartbeatTimeout":40,"resumed":false}
          a< {"cmd":"notifyNewPeer","uid":"bob","uname":"bob_name","userType":0,"talkType":1,"rtcConfig":{"bundlePolicy":"max-bundle","iceServers":[],"iceTransportPolicy":"all","rtcpMuxPolicy":"require"}}
    "##]],
    );
}

#[test]
fn a_dropped_member_times_out() {
    let script = format!(
        r#"
        open a
        a> {ja}
        open b
        b> {jb}
        +5s
        drop b
        +30s
        a> {{"cmd":"keepLive"}}
        +5s
        "#,
        ja = join("r", "alice"),
        jb = join("r", "bob"),
    );
    check(
        cfg(),
        &script,
        expect![[r##"
        open a
        a> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"alice","uname":"alice_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          rec session+ #1 10000/r uid=alice uname=alice_name ip=192.0.2.1 os=Win32 browser=chrome58.0 sdk=1.0.0 t=0s
          a< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r","roomName":"talk-now","uid":"alice","uname":"alice_name","sessionId":"#1","reportStatsInterval":15,"userList":null,"resumeKey":"$key(alice)","heartbeatTimeout":40,"resumed":false}
        open b
        b> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"bob","uname":"bob_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          rec session+ #2 10000/r uid=bob uname=bob_name ip=192.0.2.1 os=Win32 browser=chrome58.0 sdk=1.0.0 t=0s
          rec sub+ #3 of #1 alice->bob t=0s
          rec sub+ #4 of #2 bob->alice t=0s
          b< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r","roomName":"talk-now","uid":"bob","uname":"bob_name","sessionId":"#2","reportStatsInterval":15,"userList":[{"appId":"10000","uid":"alice","uname":"alice_name","userType":0,"talkType":1}],"resumeKey":"$key(bob)","heartbeatTimeout":40,"resumed":false}
          a< {"cmd":"notifyNewPeer","uid":"bob","uname":"bob_name","userType":0,"talkType":1,"rtcConfig":{"bundlePolicy":"max-bundle","iceServers":[],"iceTransportPolicy":"all","rtcpMuxPolicy":"require"}}
        +5s
        drop b
        +30s
        a> {"cmd":"keepLive"}
          a< {"cmd":"respKeepLive","result":0,"desc":"ok"}
        +5s
          a< {"cmd":"relayLeave","uid":"bob","uname":"bob_name","userType":0}
          rec sub- #4 t=40s duration=0s status=3 cost=0
          rec sub- #3 t=40s duration=0s status=3 cost=0
          rec session- #2 t=40s duration=40s timed_out=true
    "##]],
    );
}

#[test]
fn a_clean_close_leaves_at_once() {
    let script = format!(
        r#"
        open a
        a> {ja}
        open b
        b> {jb}
        close b
        "#,
        ja = join("r", "alice"),
        jb = join("r", "bob"),
    );
    check(
        cfg(),
        &script,
        expect![[r##"
        open a
        a> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"alice","uname":"alice_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          rec session+ #1 10000/r uid=alice uname=alice_name ip=192.0.2.1 os=Win32 browser=chrome58.0 sdk=1.0.0 t=0s
          a< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r","roomName":"talk-now","uid":"alice","uname":"alice_name","sessionId":"#1","reportStatsInterval":15,"userList":null,"resumeKey":"$key(alice)","heartbeatTimeout":40,"resumed":false}
        open b
        b> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"bob","uname":"bob_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          rec session+ #2 10000/r uid=bob uname=bob_name ip=192.0.2.1 os=Win32 browser=chrome58.0 sdk=1.0.0 t=0s
          rec sub+ #3 of #1 alice->bob t=0s
          rec sub+ #4 of #2 bob->alice t=0s
          b< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r","roomName":"talk-now","uid":"bob","uname":"bob_name","sessionId":"#2","reportStatsInterval":15,"userList":[{"appId":"10000","uid":"alice","uname":"alice_name","userType":0,"talkType":1}],"resumeKey":"$key(bob)","heartbeatTimeout":40,"resumed":false}
          a< {"cmd":"notifyNewPeer","uid":"bob","uname":"bob_name","userType":0,"talkType":1,"rtcConfig":{"bundlePolicy":"max-bundle","iceServers":[],"iceTransportPolicy":"all","rtcpMuxPolicy":"require"}}
        close b
          a< {"cmd":"relayLeave","uid":"bob","uname":"bob_name","userType":0}
          rec sub- #4 t=0s duration=0s status=2 cost=0
          rec sub- #3 t=0s duration=0s status=2 cost=0
          rec session- #2 t=0s duration=0s timed_out=false
    "##]],
    );
}

#[test]
fn identity_mismatch_unknown_remote_and_order_of_joining() {
    let script = format!(
        r#"
        open a
        a> {{"cmd":"keepLive"}}
        a> {ja}
        open b
        b> {jb}
        b> {{"cmd":"offer","uid":"alice","remoteUid":"alice","msg":"{{}}"}}
        b> {{"cmd":"candidate","roomId":"elsewhere","remoteUid":"alice","msg":"{{}}"}}
        b> {{"cmd":"offer","remoteUid":"carol","msg":"{{}}"}}
        b> {{"cmd":"offer","remoteUid":"bob","msg":"{{}}"}}
        b> {{"cmd":"answer","remoteUid":"carol","msg":"{{}}"}}
        b> {{"cmd":"peerConnected","remoteUid":"carol","connectType":"TURN"}}
        b> {jother}
        b> {jbob_elsewhere}
        b> {{"cmd":"leave"}}
        b> {{"cmd":"keepLive"}}
        b> {{"cmd":"leave"}}
        "#,
        ja = join("r", "alice"),
        jb = join("r", "bob"),
        jother = join("r", "mallory"),
        jbob_elsewhere = join("other", "bob"),
    );
    check(
        cfg(),
        &script,
        expect![[r##"
        open a
        a> {"cmd":"keepLive"}
          a< {"cmd":"respKeepLive","result":13,"desc":"not allowed: join a room first"}
        a> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"alice","uname":"alice_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          rec session+ #1 10000/r uid=alice uname=alice_name ip=192.0.2.1 os=Win32 browser=chrome58.0 sdk=1.0.0 t=0s
          a< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r","roomName":"talk-now","uid":"alice","uname":"alice_name","sessionId":"#1","reportStatsInterval":15,"userList":null,"resumeKey":"$key(alice)","heartbeatTimeout":40,"resumed":false}
        open b
        b> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"bob","uname":"bob_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          rec session+ #2 10000/r uid=bob uname=bob_name ip=192.0.2.1 os=Win32 browser=chrome58.0 sdk=1.0.0 t=0s
          rec sub+ #3 of #1 alice->bob t=0s
          rec sub+ #4 of #2 bob->alice t=0s
          b< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r","roomName":"talk-now","uid":"bob","uname":"bob_name","sessionId":"#2","reportStatsInterval":15,"userList":[{"appId":"10000","uid":"alice","uname":"alice_name","userType":0,"talkType":1}],"resumeKey":"$key(bob)","heartbeatTimeout":40,"resumed":false}
          a< {"cmd":"notifyNewPeer","uid":"bob","uname":"bob_name","userType":0,"talkType":1,"rtcConfig":{"bundlePolicy":"max-bundle","iceServers":[],"iceTransportPolicy":"all","rtcpMuxPolicy":"require"}}
        b> {"cmd":"offer","uid":"alice","remoteUid":"alice","msg":"{}"}
          b< {"cmd":"respOffer","remoteUid":"alice","result":13,"desc":"not allowed: uid alice is not this connection's uid bob","subSessionId":""}
        b> {"cmd":"candidate","roomId":"elsewhere","remoteUid":"alice","msg":"{}"}
          b< {"cmd":"respCandidate","uid":"","uname":"","remoteUid":"alice","result":13,"desc":"not allowed: roomId elsewhere is not this connection's room r"}
        b> {"cmd":"offer","remoteUid":"carol","msg":"{}"}
          b< {"cmd":"respOffer","remoteUid":"carol","result":6,"desc":"can't find the remote user id","subSessionId":""}
        b> {"cmd":"offer","remoteUid":"bob","msg":"{}"}
          b< {"cmd":"respOffer","remoteUid":"bob","result":3,"desc":"server parse the message faild, please check the format: remoteUid is your own uid","subSessionId":""}
        b> {"cmd":"answer","remoteUid":"carol","msg":"{}"}
          b< {"cmd":"respAnswer","uid":"","uname":"","remoteUid":"carol","result":6,"desc":"can't find the remote user id"}
        b> {"cmd":"peerConnected","remoteUid":"carol","connectType":"TURN"}
          b< {"cmd":"respPeerConnected","uid":"","uname":"","remoteUid":"carol","result":6,"desc":"can't find the remote user id"}
        b> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"mallory","uname":"mallory_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          b< {"cmd":"respJoin","result":13,"desc":"not allowed: this connection joined as uid bob","roomId":"r","roomName":"","uid":"mallory","uname":"","sessionId":"","reportStatsInterval":15,"userList":null,"resumeKey":"","heartbeatTimeout":0,"resumed":false}
        b> {"cmd":"join","appId":"10000","token":"t","roomId":"other","roomName":"talk-now","uid":"bob","uname":"bob_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          b< {"cmd":"respJoin","result":13,"desc":"not allowed: this connection is in room r; leave it first","roomId":"other","roomName":"","uid":"bob","uname":"","sessionId":"","reportStatsInterval":15,"userList":null,"resumeKey":"","heartbeatTimeout":0,"resumed":false}
        b> {"cmd":"leave"}
          b< {"cmd":"respLeave","uid":"bob","uname":"bob_name","userType":0,"result":0,"desc":"ok"}
          a< {"cmd":"relayLeave","uid":"bob","uname":"bob_name","userType":0}
          rec sub- #4 t=0s duration=0s status=2 cost=0
          rec sub- #3 t=0s duration=0s status=2 cost=0
          rec session- #2 t=0s duration=0s timed_out=false
        b> {"cmd":"keepLive"}
          b< {"cmd":"respKeepLive","result":2,"desc":"can't find the designated uid, it may leave the room halfway"}
        b> {"cmd":"leave"}
          b< {"cmd":"respLeave","uid":"","uname":"","userType":0,"result":2,"desc":"can't find the designated uid, it may leave the room halfway"}
    "##]],
    );
}

#[test]
fn turn_talk_type_is_seen_by_a_late_joiner() {
    let script = format!(
        r#"
        open a
        a> {ja}
        a> {{"cmd":"turnTalkType","index":0,"enable":false}}
        a> {{"cmd":"turnTalkType","index":"2","enable":"true"}}
        open b
        b> {jb}
        a> {{"cmd":"offer","remoteUid":"bob","msg":"{{}}"}}
        a> {{"cmd":"peerConnected","remoteUid":"bob","connectType":"relay"}}
        b> {{"cmd":"turnTalkType","index":1,"enable":false}}
        b> {{"cmd":"turnTalkType","index":9,"enable":false}}
        "#,
        ja = join("r", "alice"),
        jb = join("r", "bob"),
    );
    check(
        cfg(),
        &script,
        expect![[r##"
        open a
        a> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"alice","uname":"alice_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          rec session+ #1 10000/r uid=alice uname=alice_name ip=192.0.2.1 os=Win32 browser=chrome58.0 sdk=1.0.0 t=0s
          a< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r","roomName":"talk-now","uid":"alice","uname":"alice_name","sessionId":"#1","reportStatsInterval":15,"userList":null,"resumeKey":"$key(alice)","heartbeatTimeout":40,"resumed":false}
        a> {"cmd":"turnTalkType","index":0,"enable":false}
          a< {"cmd":"respTurnTalkType","uid":"alice","result":0,"desc":"ok"}
        a> {"cmd":"turnTalkType","index":"2","enable":"true"}
          a< {"cmd":"respTurnTalkType","uid":"alice","result":0,"desc":"ok"}
        open b
        b> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"bob","uname":"bob_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          rec session+ #2 10000/r uid=bob uname=bob_name ip=192.0.2.1 os=Win32 browser=chrome58.0 sdk=1.0.0 t=0s
          rec sub+ #3 of #1 alice->bob t=0s
          rec sub+ #4 of #2 bob->alice t=0s
          b< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r","roomName":"talk-now","uid":"bob","uname":"bob_name","sessionId":"#2","reportStatsInterval":15,"userList":[{"appId":"10000","uid":"alice","uname":"alice_name","userType":0,"talkType":1}],"resumeKey":"$key(bob)","heartbeatTimeout":40,"resumed":false}
          a< {"cmd":"notifyNewPeer","uid":"bob","uname":"bob_name","userType":0,"talkType":1,"rtcConfig":{"bundlePolicy":"max-bundle","iceServers":[],"iceTransportPolicy":"all","rtcpMuxPolicy":"require"}}
        a> {"cmd":"offer","remoteUid":"bob","msg":"{}"}
          b< {"cmd":"relayOffer","uid":"alice","uname":"alice_name","remoteUid":"bob","subSessionId":"#4","msg":"{}","rtcConfig":{"bundlePolicy":"max-bundle","iceServers":[],"iceTransportPolicy":"all","rtcpMuxPolicy":"require"},"isIceReset":false}
          a< {"cmd":"respOffer","remoteUid":"bob","result":0,"desc":"ok","subSessionId":"#3"}
          rec sub-begin #3 t=0s
        a> {"cmd":"peerConnected","remoteUid":"bob","connectType":"relay"}
          a< {"cmd":"respPeerConnected","uid":"alice","uname":"alice_name","remoteUid":"bob","result":0,"desc":"ok"}
          b< {"cmd":"relayTurnTalkType","uid":"alice","uname":"alice_name","index":0,"enable":false}
          b< {"cmd":"relayTurnTalkType","uid":"alice","uname":"alice_name","index":2,"enable":true}
          rec sub-connect #3 t=0s TURN
        b> {"cmd":"turnTalkType","index":1,"enable":false}
          b< {"cmd":"respTurnTalkType","uid":"bob","result":0,"desc":"ok"}
          a< {"cmd":"relayTurnTalkType","uid":"bob","uname":"bob_name","index":1,"enable":false}
        b> {"cmd":"turnTalkType","index":9,"enable":false}
          b< {"cmd":"respTurnTalkType","uid":"","result":3,"desc":"server parse the message faild, please check the format: turnTalkType: field index must be 0, 1, 2 or 3"}
    "##]],
    );
}

#[test]
fn bad_frames_get_non_zero_answers() {
    let script = r#"
        open a
        a> garbage
        a> [1]
        a> {"cmd":"fly"}
        a> {"cmd":"join","appId":"10000","uid":7}
        a> {"cmd":"join","appId":"10000","roomId":"r","uid":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}
        a> {"cmd":"join","appId":"10000","roomId":22,"uid":"","uname":""}
        a> {"cmd":"reportStats"}
        a> {"cmd":"reportStats","remoteUid":"nobody"}
        a> {"cmd":"reportInfo","result":9,"desc":"ice server invalid","data1":{"x":1},"data2":null}
        a> {"cmd":"updateToken"}
        a> {"cmd":"updateToken","token":"new"}
    "#;
    check(
        cfg(),
        script,
        expect![[r##"
        open a
        a> garbage
          a< {"cmd":"generalMsgResp","result":3,"desc":"server parse the message faild, please check the format: not valid JSON: expected value at line 1 column 1"}
        a> [1]
          a< {"cmd":"generalMsgResp","result":3,"desc":"server parse the message faild, please check the format: the frame must be a JSON object"}
        a> {"cmd":"fly"}
          a< {"cmd":"generalMsgResp","result":3,"desc":"server parse the message faild, please check the format: unknown cmd \"fly\""}
        a> {"cmd":"join","appId":"10000","uid":7}
          a< {"cmd":"respJoin","result":3,"desc":"server parse the message faild, please check the format: join: field roomId is required","roomId":"","roomName":"","uid":7,"uname":"","sessionId":"","reportStatsInterval":15,"userList":null,"resumeKey":"","heartbeatTimeout":0,"resumed":false}
        a> {"cmd":"join","appId":"10000","roomId":"r","uid":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}
          a< {"cmd":"respJoin","result":3,"desc":"server parse the message faild, please check the format: uid is longer than 64 characters","roomId":"r","roomName":"","uid":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","uname":"","sessionId":"","reportStatsInterval":15,"userList":null,"resumeKey":"","heartbeatTimeout":0,"resumed":false}
        a> {"cmd":"join","appId":"10000","roomId":22,"uid":"","uname":""}
          rec session+ #1 10000/22 uid=755275413 uname=client_755275413 ip=192.0.2.1 os= browser= sdk= t=0s
          a< {"cmd":"respJoin","result":0,"desc":"ok","roomId":22,"roomName":"","uid":"755275413","uname":"client_755275413","sessionId":"#1","reportStatsInterval":15,"userList":null,"resumeKey":"$key(755275413)","heartbeatTimeout":40,"resumed":false}
        a> {"cmd":"reportStats"}
          a< {"cmd":"generalMsgResp","result":3,"desc":"server parse the message faild, please check the format: reportStats: field remoteUid or subSessionId is required"}
        a> {"cmd":"reportStats","remoteUid":"nobody"}
          a< {"cmd":"generalMsgResp","result":6,"desc":"can't find the remote user id"}
        a> {"cmd":"reportInfo","result":9,"desc":"ice server invalid","data1":{"x":1},"data2":null}
          rec info #2 uid=755275413 result=9 desc=ice server invalid
        a> {"cmd":"updateToken"}
          a< {"cmd":"respUpdateToken","result":3,"desc":"server parse the message faild, please check the format: updateToken: field token is required","expireAt":0}
        a> {"cmd":"updateToken","token":"new"}
          a< {"cmd":"respUpdateToken","result":0,"desc":"ok","expireAt":0}
    "##]],
    );
}

#[test]
fn tokens_are_enforced_renewed_and_expire() {
    let cfg = EngineConfig {
        auth: AuthMode::Required { prompt_secs: 10 },
        ..EngineConfig::default()
    };
    let mut w = World::new(cfg);
    let at = |secs: u64| harness::START.plus_secs(secs);
    let valid = |app: &str, uid: Option<&str>, exp: Millis| Grant::Valid {
        app_id: app.into(),
        uid: uid.map(Into::into),
        expires_at: exp,
    };
    let mut out = String::new();
    out += &w.run(&format!("open a\na> {}", join("r", "alice")));
    w.grants.insert(
        "a".into(),
        Grant::Invalid("signature does not match".into()),
    );
    out += &w.run(&format!("a> {}", join("r", "alice")));
    w.grants.insert("a".into(), valid("20000", None, at(100)));
    out += &w.run(&format!("a> {}", join("r", "alice")));
    w.grants
        .insert("a".into(), valid("10000", Some("bob"), at(100)));
    out += &w.run(&format!("a> {}", join("r", "alice")));
    w.grants
        .insert("a".into(), valid("10000", Some("alice"), at(30)));
    out += &w.run(&format!("a> {}", join("r", "alice")));
    w.grants.insert("b".into(), valid("10000", None, at(1000)));
    out += &w.run(&format!("open b\nb> {}", join("r", "bob")));
    // Ten seconds before expiry alice is asked to renew; she renews until 60 s.
    out += &w.run("+20s");
    w.grants
        .insert("a".into(), valid("10000", Some("alice"), at(60)));
    out += &w.run(r#"a> {"cmd":"updateToken","token":"fresh"}"#);
    // A token for another uid does not renew.
    w.grants
        .insert("a".into(), valid("10000", Some("bob"), at(600)));
    out += &w.run(r#"a> {"cmd":"updateToken","token":"stolen"}"#);
    // Keep both alive; the renewed token runs out at 60 s.
    out += &w.run("+25s\na> {\"cmd\":\"keepLive\"}\nb> {\"cmd\":\"keepLive\"}\n+20s");
    expect![[r##"
    open a
    a> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"alice","uname":"alice_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
      a< {"cmd":"respJoin","result":12,"desc":"token is missing, invalid or expired: the join carries no token","roomId":"r","roomName":"","uid":"alice","uname":"","sessionId":"","reportStatsInterval":15,"userList":null,"resumeKey":"","heartbeatTimeout":0,"resumed":false}
    a> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"alice","uname":"alice_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
      a< {"cmd":"respJoin","result":12,"desc":"token is missing, invalid or expired: signature does not match","roomId":"r","roomName":"","uid":"alice","uname":"","sessionId":"","reportStatsInterval":15,"userList":null,"resumeKey":"","heartbeatTimeout":0,"resumed":false}
    a> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"alice","uname":"alice_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
      a< {"cmd":"respJoin","result":12,"desc":"token is missing, invalid or expired: the token is for app 20000, not 10000","roomId":"r","roomName":"","uid":"alice","uname":"","sessionId":"","reportStatsInterval":15,"userList":null,"resumeKey":"","heartbeatTimeout":0,"resumed":false}
    a> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"alice","uname":"alice_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
      a< {"cmd":"respJoin","result":12,"desc":"token is missing, invalid or expired: the token is for uid bob","roomId":"r","roomName":"","uid":"alice","uname":"","sessionId":"","reportStatsInterval":15,"userList":null,"resumeKey":"","heartbeatTimeout":0,"resumed":false}
    a> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"alice","uname":"alice_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
      rec session+ #1 10000/r uid=alice uname=alice_name ip=192.0.2.1 os=Win32 browser=chrome58.0 sdk=1.0.0 t=0s
      a< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r","roomName":"talk-now","uid":"alice","uname":"alice_name","sessionId":"#1","reportStatsInterval":15,"userList":null,"resumeKey":"$key(alice)","heartbeatTimeout":40,"resumed":false}
    open b
    b> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"bob","uname":"bob_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
      rec session+ #2 10000/r uid=bob uname=bob_name ip=192.0.2.1 os=Win32 browser=chrome58.0 sdk=1.0.0 t=0s
      rec sub+ #3 of #1 alice->bob t=0s
      rec sub+ #4 of #2 bob->alice t=0s
      b< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r","roomName":"talk-now","uid":"bob","uname":"bob_name","sessionId":"#2","reportStatsInterval":15,"userList":[{"appId":"10000","uid":"alice","uname":"alice_name","userType":0,"talkType":1}],"resumeKey":"$key(bob)","heartbeatTimeout":40,"resumed":false}
      a< {"cmd":"notifyNewPeer","uid":"bob","uname":"bob_name","userType":0,"talkType":1,"rtcConfig":{"bundlePolicy":"max-bundle","iceServers":[],"iceTransportPolicy":"all","rtcpMuxPolicy":"require"}}
    +20s
      a< {"cmd":"systemPromptToken","appId":"10000","roomId":"r","uid":"alice","expireAt":1700000030}
    a> {"cmd":"updateToken","token":"fresh"}
      a< {"cmd":"respUpdateToken","result":0,"desc":"ok","expireAt":1700000060}
    a> {"cmd":"updateToken","token":"stolen"}
      a< {"cmd":"respUpdateToken","result":12,"desc":"token is missing, invalid or expired: the token is for uid bob","expireAt":0}
    +25s
      a< {"cmd":"relayLeave","uid":"bob","uname":"bob_name","userType":0}
      rec sub- #4 t=40s duration=0s status=3 cost=0
      rec sub- #3 t=40s duration=0s status=3 cost=0
      rec session- #2 t=40s duration=40s timed_out=true
      b closed 4002 no message within the heartbeat timeout
    a> {"cmd":"keepLive"}
      a< {"cmd":"respKeepLive","result":0,"desc":"ok"}
    b> {"cmd":"keepLive"}
    +20s
      a< {"cmd":"systemPromptToken","appId":"10000","roomId":"r","uid":"alice","expireAt":1700000060}
      a< {"cmd":"systemKickUser","appId":"10000","roomId":"r","uid":"alice","desc":"token is expire"}
      rec session- #1 t=60s duration=60s timed_out=false
      a closed 4003 token is expire
"##]].assert_eq(&out);
}

#[test]
fn operator_kick_and_shutdown() {
    let script = format!(
        r#"
        open a
        a> {ja}
        open b
        b> {jb}
        kick 10000 r bob
        kick 10000 r bob
        open c
        c> {jc}
        shutdown
        "#,
        ja = join("r", "alice"),
        jb = join("r", "bob"),
        jc = join("r", "carol"),
    );
    check(
        cfg(),
        &script,
        expect![[r##"
        open a
        a> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"alice","uname":"alice_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          rec session+ #1 10000/r uid=alice uname=alice_name ip=192.0.2.1 os=Win32 browser=chrome58.0 sdk=1.0.0 t=0s
          a< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r","roomName":"talk-now","uid":"alice","uname":"alice_name","sessionId":"#1","reportStatsInterval":15,"userList":null,"resumeKey":"$key(alice)","heartbeatTimeout":40,"resumed":false}
        open b
        b> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"bob","uname":"bob_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          rec session+ #2 10000/r uid=bob uname=bob_name ip=192.0.2.1 os=Win32 browser=chrome58.0 sdk=1.0.0 t=0s
          rec sub+ #3 of #1 alice->bob t=0s
          rec sub+ #4 of #2 bob->alice t=0s
          b< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r","roomName":"talk-now","uid":"bob","uname":"bob_name","sessionId":"#2","reportStatsInterval":15,"userList":[{"appId":"10000","uid":"alice","uname":"alice_name","userType":0,"talkType":1}],"resumeKey":"$key(bob)","heartbeatTimeout":40,"resumed":false}
          a< {"cmd":"notifyNewPeer","uid":"bob","uname":"bob_name","userType":0,"talkType":1,"rtcConfig":{"bundlePolicy":"max-bundle","iceServers":[],"iceTransportPolicy":"all","rtcpMuxPolicy":"require"}}
        kick 10000 r bob
          = true
          b< {"cmd":"systemKickUser","appId":"10000","roomId":"r","uid":"bob","desc":"removed by an operator"}
          a< {"cmd":"relayLeave","uid":"bob","uname":"bob_name","userType":0}
          rec sub- #4 t=0s duration=0s status=2 cost=0
          rec sub- #3 t=0s duration=0s status=2 cost=0
          rec session- #2 t=0s duration=0s timed_out=false
          b closed 4004 kicked: removed by an operator
        kick 10000 r bob
          = false
        open c
        c> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"carol","uname":"carol_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          rec session+ #5 10000/r uid=carol uname=carol_name ip=192.0.2.1 os=Win32 browser=chrome58.0 sdk=1.0.0 t=0s
          rec sub+ #6 of #1 alice->carol t=0s
          rec sub+ #7 of #5 carol->alice t=0s
          c< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r","roomName":"talk-now","uid":"carol","uname":"carol_name","sessionId":"#5","reportStatsInterval":15,"userList":[{"appId":"10000","uid":"alice","uname":"alice_name","userType":0,"talkType":1}],"resumeKey":"$key(carol)","heartbeatTimeout":40,"resumed":false}
          a< {"cmd":"notifyNewPeer","uid":"carol","uname":"carol_name","userType":0,"talkType":1,"rtcConfig":{"bundlePolicy":"max-bundle","iceServers":[],"iceTransportPolicy":"all","rtcpMuxPolicy":"require"}}
        shutdown
          a< {"cmd":"systemKickUser","appId":"10000","roomId":"r","uid":"alice","desc":"server is shutting down"}
          c< {"cmd":"relayLeave","uid":"alice","uname":"alice_name","userType":0}
          rec sub- #6 t=0s duration=0s status=2 cost=0
          rec sub- #7 t=0s duration=0s status=2 cost=0
          rec session- #1 t=0s duration=0s timed_out=false
          a closed 1001 server is shutting down; reconnect shortly
          c< {"cmd":"systemKickUser","appId":"10000","roomId":"r","uid":"carol","desc":"server is shutting down"}
          rec session- #5 t=0s duration=0s timed_out=false
          c closed 1001 server is shutting down; reconnect shortly
    "##]],
    );
}

#[test]
fn flooding_is_rate_limited() {
    let cfg = EngineConfig {
        rate_per_sec: 1,
        rate_burst: 3,
        ..EngineConfig::default()
    };
    let script = format!(
        r#"
        open a
        a> {ja}
        a> {{"cmd":"keepLive"}}
        a> {{"cmd":"keepLive"}}
        a> {{"cmd":"keepLive"}}
        +1s
        a> {{"cmd":"keepLive"}}
        "#,
        ja = join("r", "alice"),
    );
    check(
        cfg,
        &script,
        expect![[r##"
        open a
        a> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"alice","uname":"alice_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          rec session+ #1 10000/r uid=alice uname=alice_name ip=192.0.2.1 os=Win32 browser=chrome58.0 sdk=1.0.0 t=0s
          a< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r","roomName":"talk-now","uid":"alice","uname":"alice_name","sessionId":"#1","reportStatsInterval":15,"userList":null,"resumeKey":"$key(alice)","heartbeatTimeout":40,"resumed":false}
        a> {"cmd":"keepLive"}
          a< {"cmd":"respKeepLive","result":0,"desc":"ok"}
        a> {"cmd":"keepLive"}
          a< {"cmd":"respKeepLive","result":0,"desc":"ok"}
        a> {"cmd":"keepLive"}
          a< {"cmd":"respKeepLive","result":14,"desc":"rate limited: at most 1 messages per second"}
        +1s
        a> {"cmd":"keepLive"}
          a< {"cmd":"respKeepLive","result":0,"desc":"ok"}
    "##]],
    );
}

#[test]
fn each_pair_gets_the_least_loaded_ice_server_with_its_own_credentials() {
    let cfg = EngineConfig {
        ice: rtcroom_core::IceMode::Registry(rtcroom_ice::RegistryConfig {
            shared_secret: Some("turn-secret".into()),
            ..rtcroom_ice::RegistryConfig::default()
        }),
        ..EngineConfig::default()
    };
    let mut w = World::new(cfg);
    let mut out = String::new();
    // No ICE server yet: a pair cannot be served.
    out += &w.run(&format!(
        "open a\na> {}\nopen b\nb> {}",
        join("r", "alice"),
        join("r", "bob")
    ));
    let now = w.now;
    let mut register = |ip: &str, max: u64| {
        let body = format!(
            r#"{{"cmd":"iceRegister","ip":"{ip}","iceType":"turn","turnPort":3478,"stunPort":3478,"maxBandwidth":{max}}}"#
        );
        let req = rtcroom_ice::parse(body.as_bytes()).unwrap();
        format!(
            "register {ip} -> {}\n",
            w.engine.ice_command(now, req.command).as_str()
        )
    };
    out += &register("203.0.113.1", 1000);
    out += &register("203.0.113.2", 5000);
    out += &w.run(&format!(
        "b> {}\na> {{\"cmd\":\"offer\",\"remoteUid\":\"bob\",\"msg\":\"{{}}\"}}",
        join("r", "bob")
    ));
    expect![[r##"
    open a
    a> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"alice","uname":"alice_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
      rec session+ #1 10000/r uid=alice uname=alice_name ip=192.0.2.1 os=Win32 browser=chrome58.0 sdk=1.0.0 t=0s
      a< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r","roomName":"talk-now","uid":"alice","uname":"alice_name","sessionId":"#1","reportStatsInterval":15,"userList":null,"resumeKey":"$key(alice)","heartbeatTimeout":40,"resumed":false}
    open b
    b> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"bob","uname":"bob_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
      b< {"cmd":"respJoin","result":8,"desc":"ice server bandwidth is full loading: no ICE server has 400 kbit/s left (0 of 0 servers healthy)","roomId":"r","roomName":"","uid":"bob","uname":"","sessionId":"","reportStatsInterval":15,"userList":null,"resumeKey":"","heartbeatTimeout":0,"resumed":false}
    register 203.0.113.1 -> successful
    register 203.0.113.2 -> successful
    b> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"bob","uname":"bob_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
      rec session+ #2 10000/r uid=bob uname=bob_name ip=192.0.2.1 os=Win32 browser=chrome58.0 sdk=1.0.0 t=0s
      rec sub+ #3 of #1 alice->bob t=0s ice=203.0.113.2
      rec sub+ #4 of #2 bob->alice t=0s ice=203.0.113.2
      b< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r","roomName":"talk-now","uid":"bob","uname":"bob_name","sessionId":"#2","reportStatsInterval":15,"userList":[{"appId":"10000","uid":"alice","uname":"alice_name","userType":0,"talkType":1}],"resumeKey":"$key(bob)","heartbeatTimeout":40,"resumed":false}
      a< {"cmd":"notifyNewPeer","uid":"bob","uname":"bob_name","userType":0,"talkType":1,"rtcConfig":{"bundlePolicy":"max-bundle","iceServers":[{"credential":"5iY+IeUUagohcNcZFo30lkvz3YM=","urls":["turn:203.0.113.2:3478?transport=udp","turn:203.0.113.2:3478?transport=tcp"],"username":"1700086400:alice"},{"credential":"","urls":["stun:203.0.113.2:3478"],"username":""}],"iceTransportPolicy":"all","rtcpMuxPolicy":"require"}}
    a> {"cmd":"offer","remoteUid":"bob","msg":"{}"}
      b< {"cmd":"relayOffer","uid":"alice","uname":"alice_name","remoteUid":"bob","subSessionId":"#4","msg":"{}","rtcConfig":{"bundlePolicy":"max-bundle","iceServers":[{"credential":"PhiaqEbrVdyJA3gdTKkBqqV77AM=","urls":["turn:203.0.113.2:3478?transport=udp","turn:203.0.113.2:3478?transport=tcp"],"username":"1700086400:bob"},{"credential":"","urls":["stun:203.0.113.2:3478"],"username":""}],"iceTransportPolicy":"all","rtcpMuxPolicy":"require"},"isIceReset":false}
      a< {"cmd":"respOffer","remoteUid":"bob","result":0,"desc":"ok","subSessionId":"#3"}
      rec sub-begin #3 t=0s
"##]].assert_eq(&out);
}

/// A connection that never joins is closed after the join timeout even while it sends
/// keepLive (4005), and so is one that left and stays in no room; a member is not.
#[test]
fn a_connection_in_no_room_is_closed_after_the_join_timeout() {
    let cfg = EngineConfig {
        join_timeout_secs: 5,
        ..EngineConfig::default()
    };
    let script = format!(
        r#"
        open idle
        open member
        member> {jm}
        open leaver
        leaver> {jl}
        +3s
        idle> {{"cmd":"keepLive"}}
        leaver> {{"cmd":"leave"}}
        +3s
        idle> {{"cmd":"keepLive"}}
        +3s
        +3s
        member> {{"cmd":"keepLive"}}
        "#,
        jm = join("r", "mia"),
        jl = join("r", "leo"),
    );
    check(
        cfg,
        &script,
        expect![[r##"
        open idle
        open member
        member> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"mia","uname":"mia_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          rec session+ #1 10000/r uid=mia uname=mia_name ip=192.0.2.1 os=Win32 browser=chrome58.0 sdk=1.0.0 t=0s
          member< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r","roomName":"talk-now","uid":"mia","uname":"mia_name","sessionId":"#1","reportStatsInterval":15,"userList":null,"resumeKey":"$key(mia)","heartbeatTimeout":40,"resumed":false}
        open leaver
        leaver> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"leo","uname":"leo_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          rec session+ #2 10000/r uid=leo uname=leo_name ip=192.0.2.1 os=Win32 browser=chrome58.0 sdk=1.0.0 t=0s
          rec sub+ #3 of #1 mia->leo t=0s
          rec sub+ #4 of #2 leo->mia t=0s
          leaver< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r","roomName":"talk-now","uid":"leo","uname":"leo_name","sessionId":"#2","reportStatsInterval":15,"userList":[{"appId":"10000","uid":"mia","uname":"mia_name","userType":0,"talkType":1}],"resumeKey":"$key(leo)","heartbeatTimeout":40,"resumed":false}
          member< {"cmd":"notifyNewPeer","uid":"leo","uname":"leo_name","userType":0,"talkType":1,"rtcConfig":{"bundlePolicy":"max-bundle","iceServers":[],"iceTransportPolicy":"all","rtcpMuxPolicy":"require"}}
        +3s
        idle> {"cmd":"keepLive"}
          idle< {"cmd":"respKeepLive","result":13,"desc":"not allowed: join a room first"}
        leaver> {"cmd":"leave"}
          leaver< {"cmd":"respLeave","uid":"leo","uname":"leo_name","userType":0,"result":0,"desc":"ok"}
          member< {"cmd":"relayLeave","uid":"leo","uname":"leo_name","userType":0}
          rec sub- #4 t=3s duration=0s status=2 cost=0
          rec sub- #3 t=3s duration=0s status=2 cost=0
          rec session- #2 t=3s duration=3s timed_out=false
        +3s
          idle closed 4005 no join within the join timeout; join right after connecting
        idle> {"cmd":"keepLive"}
        +3s
          leaver closed 4005 no join within the join timeout; join right after connecting
        +3s
        member> {"cmd":"keepLive"}
          member< {"cmd":"respKeepLive","result":0,"desc":"ok"}
    "##]],
    );
}

/// Joins from one address beyond `joins_per_ip_burst` are refused with 14 until the bucket
/// refills; another address is not affected, and a resume is never counted.
#[test]
fn joins_from_one_address_are_rate_limited() {
    let cfg = EngineConfig {
        joins_per_ip_per_sec: 1,
        joins_per_ip_burst: 2,
        ..EngineConfig::default()
    };
    let script = format!(
        r#"
        open a 198.51.100.1
        a> {j1}
        open b 198.51.100.1
        b> {j2}
        open c 198.51.100.1
        c> {j3}
        open d 203.0.113.9
        d> {j4}
        drop a
        open a2 198.51.100.1
        a2> {resume}
        +1s
        c> {j3}
        "#,
        j1 = join("r", "u1"),
        j2 = join("r2", "u2"),
        j3 = join("r3", "u3"),
        j4 = join("r3", "u4"),
        resume = join_with_key("r", "u1", "$key(u1)"),
    );
    check(
        cfg,
        &script,
        expect![[r##"
        open a 198.51.100.1
        a> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"u1","uname":"u1_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          rec session+ #1 10000/r uid=u1 uname=u1_name ip=198.51.100.1 os=Win32 browser=chrome58.0 sdk=1.0.0 t=0s
          a< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r","roomName":"talk-now","uid":"u1","uname":"u1_name","sessionId":"#1","reportStatsInterval":15,"userList":null,"resumeKey":"$key(u1)","heartbeatTimeout":40,"resumed":false}
        open b 198.51.100.1
        b> {"cmd":"join","appId":"10000","token":"t","roomId":"r2","roomName":"talk-now","uid":"u2","uname":"u2_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          rec session+ #2 10000/r2 uid=u2 uname=u2_name ip=198.51.100.1 os=Win32 browser=chrome58.0 sdk=1.0.0 t=0s
          b< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r2","roomName":"talk-now","uid":"u2","uname":"u2_name","sessionId":"#2","reportStatsInterval":15,"userList":null,"resumeKey":"$key(u2)","heartbeatTimeout":40,"resumed":false}
        open c 198.51.100.1
        c> {"cmd":"join","appId":"10000","token":"t","roomId":"r3","roomName":"talk-now","uid":"u3","uname":"u3_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          c< {"cmd":"respJoin","result":14,"desc":"rate limited: at most 1 joins per second from one address; retry in a few seconds","roomId":"r3","roomName":"","uid":"u3","uname":"","sessionId":"","reportStatsInterval":15,"userList":null,"resumeKey":"","heartbeatTimeout":0,"resumed":false}
        open d 203.0.113.9
        d> {"cmd":"join","appId":"10000","token":"t","roomId":"r3","roomName":"talk-now","uid":"u4","uname":"u4_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          rec session+ #3 10000/r3 uid=u4 uname=u4_name ip=203.0.113.9 os=Win32 browser=chrome58.0 sdk=1.0.0 t=0s
          d< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r3","roomName":"talk-now","uid":"u4","uname":"u4_name","sessionId":"#3","reportStatsInterval":15,"userList":null,"resumeKey":"$key(u4)","heartbeatTimeout":40,"resumed":false}
        drop a
        open a2 198.51.100.1
        a2> {"cmd":"join","appId":"10000","token":"t","roomId":"r","roomName":"talk-now","uid":"u1","uname":"u1_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0","resumeKey":"$key(u1)"}
          a2< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r","roomName":"talk-now","uid":"u1","uname":"u1_name","sessionId":"#1","reportStatsInterval":15,"userList":null,"resumeKey":"$key(u1)","heartbeatTimeout":40,"resumed":true}
        +1s
        c> {"cmd":"join","appId":"10000","token":"t","roomId":"r3","roomName":"talk-now","uid":"u3","uname":"u3_name","userType":0,"talkType":1,"time":"1560138845","osName":"Win32","browser":"chrome58.0","sdkInfo":"1.0.0"}
          rec session+ #4 10000/r3 uid=u3 uname=u3_name ip=198.51.100.1 os=Win32 browser=chrome58.0 sdk=1.0.0 t=1s
          rec sub+ #5 of #3 u4->u3 t=1s
          rec sub+ #6 of #4 u3->u4 t=1s
          c< {"cmd":"respJoin","result":0,"desc":"ok","roomId":"r3","roomName":"talk-now","uid":"u3","uname":"u3_name","sessionId":"#4","reportStatsInterval":15,"userList":[{"appId":"10000","uid":"u4","uname":"u4_name","userType":0,"talkType":1}],"resumeKey":"$key(u3)","heartbeatTimeout":40,"resumed":false}
          d< {"cmd":"notifyNewPeer","uid":"u3","uname":"u3_name","userType":0,"talkType":1,"rtcConfig":{"bundlePolicy":"max-bundle","iceServers":[],"iceTransportPolicy":"all","rtcpMuxPolicy":"require"}}
    "##]],
    );
}
