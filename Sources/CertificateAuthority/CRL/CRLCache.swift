public import CardDeskCore

/// The last CRL signed for each issuing CA. A new CRL (with the next CRL number) is signed only when the set of
/// revoked certificates changes or half of the current one's lifetime has passed, so fetching a CRL is cheap.
actor CRLCache {
    private struct Entry {
        let crl: CertificateRevocationList
        let entries: [RevokedCertificate]
    }

    let validitySeconds: Int64
    private var entries: [CertificateProfileKind: Entry] = [:]

    init(validitySeconds: Int64) {
        self.validitySeconds = validitySeconds
    }

    func invalidate(_ profile: CertificateProfileKind) {
        entries[profile] = nil
    }

    func cached(_ profile: CertificateProfileKind, revoked: [RevokedCertificate], now: Timestamp) -> CertificateRevocationList? {
        guard let entry = entries[profile], entry.entries == revoked else { return nil }
        let refreshAt = entry.crl.thisUpdate.adding(seconds: validitySeconds / 2)
        return now < refreshAt ? entry.crl : nil
    }

    func store(_ crl: CertificateRevocationList, profile: CertificateProfileKind, revoked: [RevokedCertificate]) {
        entries[profile] = Entry(crl: crl, entries: revoked)
    }
}

extension CertificateAuthority {
    /// The current CRL of one issuing CA, signing a new one when needed.
    /// Another process (an operator's `ca revoke`) may have revoked meanwhile: the revoked set is read every time.
    public func currentCRL(_ profile: CertificateProfileKind) async throws -> CertificateRevocationList {
        let revoked = try await storage.revokedCertificates(profile: profile)
        let now = clock.now()
        if let crl = await crlCache.cached(profile, revoked: revoked, now: now) { return crl }
        let crl = try await CertificateRevocationList.sign(
            by: hierarchy.issuer(profile),
            number: try await storage.nextCRLNumber(profile: profile),
            entries: revoked,
            thisUpdate: now,
            nextUpdate: now.adding(seconds: crlCache.validitySeconds)
        )
        await crlCache.store(crl, profile: profile, revoked: revoked)
        return crl
    }
}
