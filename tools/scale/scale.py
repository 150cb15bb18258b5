"""Helpers of tools/scale/run.sh: signed tokens, the balancer's admin
socket, and the cross-replica checks (feedback, replay). Standard library
plus PyJWT (pip install 'pyjwt[crypto]'). Loopback only."""
import json
import socket
import sys
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ProcessPoolExecutor

ISSUER = "https://ehr.example.org"
SERVICE = "/cds-services/leg-cramps-patient-view"


def keys(directory):
    """A throwaway ES256 key for this run (P-256 signs ten times faster than
    the test suite's P-384 key): private.pem and the key set jwks.json."""
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    with open(f"{directory}/private.pem", "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    public.update({"kid": "scale-es256", "use": "sig", "alg": "ES256"})
    with open(f"{directory}/jwks.json", "w") as f:
        json.dump({"keys": [public]}, f)


def _sign(args):
    key_path, audience, count = args
    import jwt
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    with open(key_path, "rb") as f:
        key = load_pem_private_key(f.read(), None)
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "scale-test", "aud": audience, "iat": now, "exp": now + 290}
    out = []
    for _ in range(count):
        claims["jti"] = str(uuid.uuid4())
        out.append(jwt.encode(claims, key, algorithm="ES256", headers={"kid": "scale-es256", "typ": "JWT"}))
    return out


def tokens(key_path, audience, count, path):
    """COUNT tokens for the patient-view service (`aud` is the URL called),
    each with its own jti, on two processes."""
    audience += SERVICE
    count = int(count)
    half = count // 2
    with ProcessPoolExecutor(2) as pool:
        parts = pool.map(_sign, [(key_path, audience, half), (key_path, audience, count - half)])
        with open(path, "w") as f:
            for part in parts:
                f.write("\n".join(part) + "\n")


def admin(sock_path, command):
    """One command on HAProxy's admin socket; prints the answer."""
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    s.sendall(command.encode() + b"\n")
    answer = b""
    while chunk := s.recv(65536):
        answer += chunk
    s.close()
    print(answer.decode().strip())


def post(url, body, token):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def one_token(key_path, audience):
    return _sign((key_path, audience, 1))[0]


def cross_checks(key_path, audience, body_path, *ports):
    """Cards issued by each replica get feedback on every other one; a token
    used on one replica is refused by another. Prints a summary; exits 1 on
    any failure."""
    body = json.load(open(body_path))
    failures = []
    issued = {}
    for port in ports:
        body["hookInstance"] = str(uuid.uuid4())
        status, answer = post(f"http://127.0.0.1:{port}{SERVICE}", body, one_token(key_path, audience + SERVICE))
        if status != 200:
            failures.append(f"hook on replica :{port} answered {status}: {answer}")
            continue
        issued[port] = [card["uuid"] for card in answer["cards"]]
    # The background writer records cards asynchronously.
    time.sleep(1.5)
    accepted = 0
    for origin, cards in issued.items():
        for port in ports:
            if port == origin:
                continue
            for card in cards:
                feedback = {"feedback": [{
                    "card": card, "outcome": "overridden",
                    "overrideReason": {"reason": {"system": "https://example.org/reasons", "code": "not-relevant"}},
                    "outcomeTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}]}
                status, answer = post(f"http://127.0.0.1:{port}{SERVICE}/feedback", feedback,
                                      one_token(key_path, f"{audience}{SERVICE}/feedback"))
                if status == 200:
                    accepted += 1
                else:
                    failures.append(f"feedback on :{port} for a card of :{origin} answered {status}: {answer}")
    expected = sum(len(c) for c in issued.values()) * (len(ports) - 1)
    print(f"feedback accepted on another replica: {accepted} of {expected}")
    # Replay: the same token on a second replica.
    token = one_token(key_path, audience + SERVICE)
    body["hookInstance"] = str(uuid.uuid4())
    first, _ = post(f"http://127.0.0.1:{ports[0]}{SERVICE}", body, token)
    second, answer = post(f"http://127.0.0.1:{ports[1]}{SERVICE}", body, token)
    print(f"replay: first use on :{ports[0]} -> {first}, same token on :{ports[1]} -> {second}")
    if first != 200 or second != 401:
        failures.append(f"replay not refused by a second replica ({first}, {second}: {answer})")
    for failure in failures:
        print("FAILED:", failure)
    sys.exit(1 if failures or accepted != expected or expected == 0 else 0)


def cards_per_hook(key_path, audience, body_path, port):
    status, answer = post(f"http://127.0.0.1:{port}{SERVICE}", json.load(open(body_path)),
                          one_token(key_path, audience + SERVICE))
    assert status == 200, (status, answer)
    print(len(answer["cards"]))


if __name__ == "__main__":
    globals()[sys.argv[1].replace("-", "_")](*sys.argv[2:])
