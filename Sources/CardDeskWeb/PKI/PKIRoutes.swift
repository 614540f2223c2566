import CardDeskCore
import CertificateAuthority
import Hummingbird
import SwiftASN1
import X509

/// CA certificates and CRLs, at the URLs that issued certificates name (AIA caIssuers, CRL distribution point):
/// - `GET /pki/root.pem`, `/pki/root.crt` (DER), `/pki/authentication-ca.pem|crt`, `/pki/signing-ca.pem|crt`
/// - `GET /crl/authentication.crl`, `/crl/signing.crl` (DER, `application/pkix-crl`, with ETag, Last-Modified, Expires
///   and max-age; If-None-Match → 304)
struct PKIRoutes {
    let authority: CertificateAuthority

    func register(on router: Router<WebContext>) {
        router.get("/pki/:file") { _, context in
            let file = try context.parameters.require("file")
            guard let dot = file.lastIndex(of: ".") else { throw Self.notFound(file) }
            let name = file[..<dot]
            let format = file[file.index(after: dot)...]
            let certificate: Certificate
            if name == "root" {
                certificate = authority.hierarchy.root
            } else if name.hasSuffix("-ca"), let profile = CertificateProfileKind(rawValue: String(name.dropLast(3))) {
                certificate = authority.hierarchy.issuer(profile).certificate
            } else {
                throw Self.notFound(file)
            }
            switch format {
            case "pem":
                return Response(
                    status: .ok, headers: [.contentType: "application/x-pem-file"],
                    body: .init(byteBuffer: ByteBuffer(string: try certificate.serializeAsPEM().pemString + "\n"))
                )
            case "crt", "cer", "der":
                return Response(
                    status: .ok, headers: [.contentType: "application/pkix-cert"],
                    body: .init(byteBuffer: ByteBuffer(bytes: try certificate.derEncoded()))
                )
            default:
                throw Self.notFound(file)
            }
        }
        router.get("/crl/:file") { request, context in
            let file = try context.parameters.require("file")
            guard file.hasSuffix(".crl"), let profile = CertificateProfileKind(rawValue: String(file.dropLast(4))) else {
                throw HTTPError(.notFound, message: "There is no CRL \(file): use /crl/authentication.crl or /crl/signing.crl.")
            }
            // The cached DER (a new CRL is signed only when the revocations change or it nears nextUpdate). Caches may keep
            // it five minutes at most: a revocation reaches them that fast, whatever the CRL's own nextUpdate says.
            let crl = try await authority.currentCRL(profile)
            let caching = HTTPCaching.headers(for: crl.derEncoded, thisUpdate: crl.thisUpdate, nextUpdate: crl.nextUpdate, now: authority.clock.now(), maxAge: 300)
            return HTTPCaching.response(request, body: crl.derEncoded, contentType: "application/pkix-crl", caching: caching)
        }
    }

    static func notFound(_ file: String) -> HTTPError {
        HTTPError(.notFound, message: "There is no CA file \(file): use root, authentication-ca or signing-ca, with .pem or .crt.")
    }
}
