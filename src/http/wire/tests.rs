#![allow(clippy::unwrap_used)]

use super::*;

/// Everything given for `input` fed in one piece and byte by byte (the two must agree).
fn run(input: &[u8]) -> Result<Vec<u8>, Refusal> {
    let mut whole = Wire::new(8192);
    let mut out = Vec::new();
    let one = whole.feed(input, &mut out).map(|_| out);
    let mut split = Wire::new(8192);
    let mut out2 = Vec::new();
    let mut two = Ok(());
    for b in input {
        if let Err(r) = split.feed(std::slice::from_ref(b), &mut out2) {
            two = Err(r);
            break;
        }
    }
    assert_eq!(one.clone().err(), two.err(), "fed whole and byte by byte");
    if one.is_ok() {
        assert_eq!(one.as_ref().ok(), Some(&out2));
    }
    one
}

fn refused(input: &str) -> Refusal {
    run(input.as_bytes()).expect_err(input)
}

#[test]
fn valid_requests_pass_unchanged() {
    for req in [
        "GET / HTTP/1.1\r\nHost: a.example\r\n\r\n",
        "GET /x?y=1 HTTP/1.0\r\n\r\n",
        "POST /p HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Length: 5\r\n\r\nhello",
        "POST / HTTP/1.1\r\nHost: [::1]:80\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b;c=\"d e\"\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET http://h/x HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
    ] {
        assert_eq!(run(req.as_bytes()).unwrap(), req.as_bytes(), "{req}");
    }
}

#[test]
fn leading_empty_lines_are_dropped_and_1x_is_served_as_1_1() {
    assert_eq!(
        run(b"\r\n\r\nGET / HTTP/1.2\r\nHost: h\r\n\r\n").unwrap(),
        b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
    );
    assert_eq!(refused("GET / HTTP/2.0\r\nHost: h\r\n\r\n").status, 505);
    assert_eq!(refused("GET / HTTP/1.10\r\nHost: h\r\n\r\n").status, 400);
}

#[test]
fn host_must_be_one_and_a_host() {
    for bad in [
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost:\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a,b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a:\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a:123456\r\n\r\n",
    ] {
        assert_eq!(refused(bad).status, 400, "{bad}");
    }
}

#[test]
fn framing_is_one_reading_or_refused() {
    for bad in [
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 005\r\n\r\nhello",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\nhello",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked,\r\n\r\n",
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\u{b}chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\t5\r\n\r\nhello",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length:  5\r\n\r\nhello",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5 \r\n\r\nhello",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Type: a/b\r\nContent-Type: c/d\r\n\r\n",
    ] {
        assert_eq!(refused(bad).status, 400, "{bad}");
    }
    let gzip = refused("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
    assert_eq!(gzip.status, 501);
    let expect = refused("POST / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n");
    assert_eq!(expect.status, 417);
    let fine =
        "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length:5\r\n\r\nhello";
    assert_eq!(run(fine.as_bytes()).unwrap(), fine.as_bytes());
}

#[test]
fn header_lines_follow_the_grammar() {
    for bad in [
        "GET / HTTP/1.1\nHost: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",
        "GET / HTTP/1.1\r\n Host: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX: a\u{0}b\r\n\r\n",
        "GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /#f HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /a\\b HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET a HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET * HTTP/1.1\r\nHost: h\r\n\r\n",
        "\rGET / HTTP/1.1\r\nHost: h\r\n\r\n",
    ] {
        assert_eq!(refused(bad).status, 400, "{bad:?}");
    }
    let r = run(b"GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n").unwrap_err();
    assert_eq!(r.status, 400);
    assert!(!r.in_body);
}

#[test]
fn chunked_bodies_follow_the_grammar() {
    let head = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    for body in [
        "5;\r\nhello\r\n0\r\n\r\n",
        "5;a b\r\nhello\r\n0\r\n\r\n",
        "5 \r\nhello\r\n0\r\n\r\n",
        "5;a\u{0}\r\nhello\r\n0\r\n\r\n",
        "0x5\r\nhello\r\n0\r\n\r\n",
        "+5\r\nhello\r\n0\r\n\r\n",
        "-1\r\nhello\r\n0\r\n\r\n",
        "5\r\nhelloXX\r\n0\r\n\r\n",
        "5\nhello\r\n0\r\n\r\n",
        "5\r\nhello\n0\r\n\r\n",
        "0\r\n\n",
        "0\r\nX: y\n\r\n",
        "11111111111111111\r\n",
    ] {
        let r = refused(&format!("{head}{body}"));
        assert_eq!(r.status, 400, "{body:?}");
        assert!(r.in_body, "{body:?}");
    }
    let long = format!("{head}1;{}\r\n", "a".repeat(CHUNK_LINE_LIMIT));
    assert!(refused(&long).in_body);
}

#[test]
fn oversized_heads_name_the_part_that_grew() {
    let mut w = Wire::new(64);
    let mut out = Vec::new();
    let method = w.feed(&[b'A'; 100], &mut out).unwrap_err();
    assert_eq!(method.status, 400);
    let mut w = Wire::new(64);
    let target = w.feed(format!("GET /{}", "a".repeat(100)).as_bytes(), &mut out);
    assert_eq!(target.unwrap_err().status, 414);
    let mut w = Wire::new(64);
    let headers = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(100));
    assert_eq!(
        w.feed(headers.as_bytes(), &mut out).unwrap_err().status,
        431
    );
}

#[test]
fn a_switch_holds_until_answered_and_h2_passes() {
    let req = b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n\x81\x05frame";
    let mut w = Wire::new(8192);
    let mut out = Vec::new();
    let taken = w.feed(req, &mut out).unwrap();
    assert_eq!(&req[taken..], b"\x81\x05frame");
    assert_eq!(w.awaiting(), Some(1));
    w.answered(1, true);
    assert!(w.is_passthrough());
    assert_eq!(w.feed(&req[taken..], &mut out).unwrap(), 7);
    assert_eq!(out, req);

    let mut w = Wire::new(8192);
    let mut out = Vec::new();
    w.feed(b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: x\r\n\r\n", &mut out)
        .unwrap();
    w.answered(1, false);
    assert!(
        w.feed(b"GARBAGE\r\n\r\n", &mut out).is_err(),
        "checked again after a refusal to switch"
    );

    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00";
    let mut w = Wire::new(8192);
    let mut out = Vec::new();
    assert_eq!(w.feed(preface, &mut out).unwrap(), preface.len());
    assert_eq!(out, preface);
    assert_eq!(w.requests(), 0);
}

#[test]
fn nothing_is_given_after_a_refusal() {
    let mut w = Wire::new(8192);
    let mut out = Vec::new();
    let input =
        b"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
    let r = w.feed(input, &mut out).unwrap_err();
    assert_eq!(r.status, 400);
    assert_eq!(out, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(w.requests(), 1);
    let next = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_eq!(w.feed(next, &mut out).unwrap(), next.len(), "taken");
    assert_eq!(
        out, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        "but nothing more given"
    );
}
