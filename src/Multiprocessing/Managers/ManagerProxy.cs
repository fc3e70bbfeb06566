namespace Multiprocessing;

/// <summary>What every proxy is: an object id in a manager reached through a <see cref="ManagerClient"/>.</summary>
internal interface IManagerProxy
{
    ManagerClient Client { get; }
    long ObjectId { get; }
}

/// <summary>Rebuilds a proxy of this type from a handle that arrived in another process.</summary>
internal interface IAttachableProxy<TSelf> : IManagerProxy where TSelf : class
{
    static abstract TSelf Attach(ManagerClient client, long objectId);
}
